# Host side of `close-to-open` (sourced by scripts/vm/in-netns.sh): changes the shared file in
# the export directly when the guest asks, and reads back what the guest wrote.
F=$EXPORT/shared.txt
wait_for_guest host-reads
answer_guest host-reads "$(cat "$F")"
wait_for_guest rewrite
printf 'host rewrote it, longer\n' >"$F"
answer_guest rewrite ok
wait_for_guest same-size
# Same size, within the same second as the last change: only the nanoseconds of mtime/ctime differ.
printf 'HOST REWROTE IT, LONGER\n' >"$F"
answer_guest same-size ok
wait_for_guest append
printf 'appended\n' >>"$F"
answer_guest append ok
wait_for_guest truncate
truncate -s 4 "$F"
answer_guest truncate ok
wait_for_guest replace
printf 'a new inode\n' >"$F.new"
mv "$F.new" "$F"
answer_guest replace ok
wait_for_guest host-reads-again
answer_guest host-reads-again "$(cat "$F")"
