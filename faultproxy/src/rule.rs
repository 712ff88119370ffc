//! Fault rules: what to do to which calls. A [`Rule`] pairs an [`Action`] with a match on the
//! call's program and procedure, a number of matches to let through first (`skip`) and a number of
//! times to fire (`count`). Rules have a one-line text form, used by the command line and the
//! control socket:
//!
//! ```text
//! ACTION [MS] [PROC] [prog=N] [proc=PROC] [count=N|always] [skip=N]
//! ```
//!
//! `MS` is required by `delay-call` and `delay-reply` and refused by the others. `PROC` is a
//! procedure number, an NFS v3 procedure name (`REMOVE`, `write`, ...) when the program is NFS,
//! or `*` for any procedure (the default). The program defaults to NFS (100003). Examples:
//! `drop-reply-close REMOVE`, `delay-reply 500 WRITE count=3`, `duplicate-call 1 prog=100005`.
//!
//! [`RuleSet`] holds the armed rules and decides, call by call, which rule fires.

use std::fmt;
use std::time::Duration;

/// The NFS program number (RFC 1813), the default program a rule matches.
pub const NFS_PROGRAM: u32 = 100003;

/// What a firing rule does to the call it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward the call; swallow its reply.
    DropReply,
    /// Forward the call; swallow its reply and close the client's connection (over UDP: forget the
    /// client's upstream socket, so its retransmission reaches the server from a new port). This is
    /// the "reply lost, client reconnects and retransmits" fault.
    DropReplyClose,
    /// Forward the call, then close both connections before any reply comes back (over UDP: forget
    /// the client's upstream socket, so the reply is lost).
    CloseAfterForward,
    /// Hold the call this long before forwarding it (later calls on the connection wait behind it).
    DelayCall(Duration),
    /// Hold the call's reply this long before forwarding it.
    DelayReply(Duration),
    /// Send the call upstream twice; forward only the first reply.
    DuplicateCall,
    /// Hold the call until the next call on the same connection arrives and send that one first.
    Reorder,
}

impl Action {
    /// The action's name in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DropReply => "drop-reply",
            Action::DropReplyClose => "drop-reply-close",
            Action::CloseAfterForward => "close-after-forward",
            Action::DelayCall(_) => "delay-call",
            Action::DelayReply(_) => "delay-reply",
            Action::DuplicateCall => "duplicate-call",
            Action::Reorder => "reorder",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::DelayCall(d) | Action::DelayReply(d) => write!(f, "{} {}", self.name(), d.as_millis()),
            _ => f.write_str(self.name()),
        }
    }
}

/// A fault rule. Build one with [`Rule::new`] and the builder methods, or parse its text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub prog: u32,
    /// The procedure to match; `None` matches every procedure of `prog`.
    pub proc_: Option<u32>,
    /// How many times the rule fires; `None` is every time.
    pub count: Option<u32>,
    /// Matching calls let through untouched before the rule starts firing.
    pub skip: u32,
}

impl Rule {
    /// A rule firing once on the first NFS call of procedure `proc_` (`None`: any procedure).
    pub fn new(action: Action, proc_: Option<u32>) -> Rule {
        Rule { action, prog: NFS_PROGRAM, proc_, count: Some(1), skip: 0 }
    }

    pub fn prog(mut self, prog: u32) -> Rule {
        self.prog = prog;
        self
    }

    /// Fires `n` times (`None`: every time).
    pub fn count(mut self, n: Option<u32>) -> Rule {
        self.count = n;
        self
    }

    pub fn skip(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    fn matches(&self, prog: u32, proc_: u32) -> bool {
        self.prog == prog && self.proc_.is_none_or(|p| p == proc_)
    }
}

/// Why a rule's text form was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleParseError(String);

impl fmt::Display for RuleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleParseError {}

fn err(msg: impl Into<String>) -> RuleParseError {
    RuleParseError(msg.into())
}

/// The name of procedure `proc_` of `prog`, when it has one this proxy knows (NFS v3).
pub fn proc_name(prog: u32, proc_: u32) -> Option<&'static str> {
    if prog == NFS_PROGRAM { xdr::nfs3::procs::NAMES.get(proc_ as usize).copied() } else { None }
}

fn parse_proc(text: &str, prog: u32) -> Result<Option<u32>, RuleParseError> {
    if text == "*" || text.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    if let Ok(n) = text.parse::<u32>() {
        return Ok(Some(n));
    }
    if prog != NFS_PROGRAM {
        return Err(err(format!("procedure {text:?}: names are known for NFS (100003) only; give a number")));
    }
    xdr::nfs3::procs::NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
        .map(|i| Some(i as u32))
        .ok_or_else(|| err(format!("unknown NFS v3 procedure {text:?}")))
}

fn parse_number(key: &str, text: &str) -> Result<u32, RuleParseError> {
    text.parse().map_err(|_| err(format!("{key}: {text:?} is not a number")))
}

impl std::str::FromStr for Rule {
    type Err = RuleParseError;

    fn from_str(s: &str) -> Result<Rule, RuleParseError> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or_else(|| err("empty rule"))?;
        let mut rest: Vec<&str> = words.collect();
        let mut take_ms = || -> Result<Duration, RuleParseError> {
            if rest.is_empty() {
                return Err(err(format!("{name} needs a delay in milliseconds")));
            }
            let ms = rest.remove(0);
            ms.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| err(format!("{name}: delay {ms:?} is not a number of milliseconds")))
        };
        let action = match name {
            "drop-reply" => Action::DropReply,
            "drop-reply-close" => Action::DropReplyClose,
            "close-after-forward" => Action::CloseAfterForward,
            "delay-call" => Action::DelayCall(take_ms()?),
            "delay-reply" => Action::DelayReply(take_ms()?),
            "duplicate-call" => Action::DuplicateCall,
            "reorder" => Action::Reorder,
            other => {
                return Err(err(format!(
                    "unknown action {other:?} (drop-reply, drop-reply-close, close-after-forward, delay-call MS, \
                     delay-reply MS, duplicate-call, reorder)"
                )));
            }
        };
        // The program first: it decides whether procedure names can be resolved.
        let mut prog = NFS_PROGRAM;
        for w in &rest {
            if let Some(v) = w.strip_prefix("prog=") {
                prog = parse_number("prog", v)?;
            }
        }
        let mut rule = Rule::new(action, None).prog(prog);
        let mut proc_seen = false;
        for w in rest {
            let proc_text = match w.split_once('=') {
                Some(("prog", _)) => continue,
                Some(("count", v)) => {
                    rule.count = if v == "always" { None } else { Some(parse_number("count", v)?) };
                    if rule.count == Some(0) {
                        return Err(err("count=0 would never fire; use count=N (N >= 1) or count=always"));
                    }
                    continue;
                }
                Some(("skip", v)) => {
                    rule.skip = parse_number("skip", v)?;
                    continue;
                }
                Some(("proc", v)) => v,
                Some((k, _)) => {
                    return Err(err(format!("unknown option {k:?} (prog=, proc=, count=, skip=)")));
                }
                None => w,
            };
            if proc_seen {
                return Err(err(format!("a second procedure {proc_text:?}: a rule matches one procedure")));
            }
            proc_seen = true;
            rule.proc_ = parse_proc(proc_text, prog)?;
        }
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    /// The canonical text form, which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        match self.proc_ {
            None => f.write_str(" *")?,
            Some(p) => match proc_name(self.prog, p) {
                Some(name) => write!(f, " {name}")?,
                None => write!(f, " {p}")?,
            },
        }
        if self.prog != NFS_PROGRAM {
            write!(f, " prog={}", self.prog)?;
        }
        match self.count {
            Some(1) => {}
            Some(n) => write!(f, " count={n}")?,
            None => f.write_str(" count=always")?,
        }
        if self.skip != 0 {
            write!(f, " skip={}", self.skip)?;
        }
        Ok(())
    }
}

/// An armed rule with what is left of its skip and count.
#[derive(Debug, Clone)]
struct Armed {
    rule: Rule,
    skip_left: u32,
    /// `None`: fires every time.
    fires_left: Option<u32>,
}

/// The armed rules, in the order they were added.
#[derive(Debug, Default)]
pub struct RuleSet {
    armed: Vec<Armed>,
}

impl RuleSet {
    pub fn add(&mut self, rule: Rule) {
        self.armed.push(Armed { skip_left: rule.skip, fires_left: rule.count, rule });
    }

    pub fn clear(&mut self) {
        self.armed.clear();
    }

    /// The rules still able to fire, with their remaining skips and fires.
    pub fn describe(&self) -> Vec<String> {
        self.armed
            .iter()
            .filter(|a| a.fires_left != Some(0))
            .map(|a| {
                let left = a.fires_left.map_or("always".to_string(), |n| n.to_string());
                format!("{}  (skip left {}, fires left {left})", a.rule, a.skip_left)
            })
            .collect()
    }

    /// Decides what happens to a call: the first armed rule that matches and is not used up
    /// takes it. While that rule still has skips left, the call passes untouched (and no later
    /// rule sees it); otherwise the rule fires.
    pub fn on_call(&mut self, prog: u32, proc_: u32) -> Option<Action> {
        let armed = self.armed.iter_mut().find(|a| a.fires_left != Some(0) && a.rule.matches(prog, proc_))?;
        if armed.skip_left > 0 {
            armed.skip_left -= 1;
            return None;
        }
        if let Some(n) = &mut armed.fires_left {
            *n -= 1;
        }
        Some(armed.rule.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Rule {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_every_action_with_names_numbers_and_options() {
        assert_eq!(parse("drop-reply-close REMOVE"), Rule::new(Action::DropReplyClose, Some(12)));
        assert_eq!(parse("drop-reply rmdir"), Rule::new(Action::DropReply, Some(13)));
        assert_eq!(parse("close-after-forward proc=RENAME"), Rule::new(Action::CloseAfterForward, Some(14)));
        assert_eq!(
            parse("delay-call 250 WRITE count=3 skip=2"),
            Rule::new(Action::DelayCall(Duration::from_millis(250)), Some(7)).count(Some(3)).skip(2)
        );
        assert_eq!(parse("delay-reply 10 *"), Rule::new(Action::DelayReply(Duration::from_millis(10)), None));
        assert_eq!(
            parse("duplicate-call 8 count=always"),
            Rule::new(Action::DuplicateCall, Some(8)).count(None)
        );
        assert_eq!(parse("reorder"), Rule::new(Action::Reorder, None));
        assert_eq!(parse("drop-reply 1 prog=100005"), Rule::new(Action::DropReply, Some(1)).prog(100005));
        // prog= may come after the procedure number.
        assert_eq!(parse("drop-reply 3 prog=100000"), Rule::new(Action::DropReply, Some(3)).prog(100000));
    }

    #[test]
    fn refuses_malformed_rules_with_a_reason() {
        let e = |s: &str| s.parse::<Rule>().unwrap_err().to_string();
        assert!(e("").contains("empty"));
        assert!(e("drop-everything").contains("unknown action"));
        assert!(e("delay-call").contains("milliseconds"));
        assert!(e("delay-reply soon REMOVE").contains("not a number of milliseconds"));
        assert!(e("drop-reply UNLINK").contains("unknown NFS v3 procedure"));
        assert!(e("drop-reply MNT prog=100005").contains("give a number"));
        assert!(e("drop-reply REMOVE RMDIR").contains("a second procedure"));
        assert!(e("drop-reply REMOVE count=0").contains("never fire"));
        assert!(e("drop-reply REMOVE count=x").contains("not a number"));
        assert!(e("drop-reply REMOVE after=3").contains("unknown option"));
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in [
            "drop-reply-close REMOVE",
            "delay-call 250 WRITE count=3 skip=2",
            "duplicate-call * count=always",
            "drop-reply 1 prog=100005",
            "reorder 30",
            "delay-reply 7 COMMIT",
        ] {
            let rule = parse(text);
            assert_eq!(rule.to_string(), text);
            assert_eq!(parse(&rule.to_string()), rule);
        }
        assert_eq!(parse("reorder").to_string(), "reorder *");
        assert_eq!(parse("drop-reply write").to_string(), "drop-reply WRITE");
    }

    #[test]
    fn skip_then_count_then_exhausted() {
        let mut set = RuleSet::default();
        set.add(parse("drop-reply REMOVE count=2 skip=1"));
        assert_eq!(set.on_call(NFS_PROGRAM, 1), None, "another procedure");
        assert_eq!(set.on_call(100005, 12), None, "another program");
        assert_eq!(set.on_call(NFS_PROGRAM, 12), None, "skipped");
        assert_eq!(set.on_call(NFS_PROGRAM, 12), Some(Action::DropReply));
        assert_eq!(set.on_call(NFS_PROGRAM, 12), Some(Action::DropReply));
        assert_eq!(set.on_call(NFS_PROGRAM, 12), None, "used up");
        assert!(set.describe().is_empty());
    }

    #[test]
    fn first_live_rule_wins_and_clear_disarms() {
        let mut set = RuleSet::default();
        set.add(parse("drop-reply REMOVE"));
        set.add(parse("duplicate-call * count=always"));
        assert_eq!(set.on_call(NFS_PROGRAM, 12), Some(Action::DropReply));
        assert_eq!(set.on_call(NFS_PROGRAM, 12), Some(Action::DuplicateCall));
        assert_eq!(set.on_call(NFS_PROGRAM, 9), Some(Action::DuplicateCall));
        assert_eq!(set.describe().len(), 1);
        set.clear();
        assert_eq!(set.on_call(NFS_PROGRAM, 9), None);
    }
}
