//! The filesystem pool's slots, shared fairly between clients. A client is a peer IP address,
//! not a connection: one host can open many connections. Each client may hold at most
//! `per_client` of the `slots` at once, and when a slot comes free it goes to the next waiting
//! client in round-robin order, not to whichever call asked first. So a host that keeps hundreds
//! of slow calls queued (1 MiB listings, WRITEs to a slow disk) costs another host at most the
//! wait for one slot to come free, and never all of them.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Slots shared by clients; see the module doc.
pub struct FairShare {
    state: Mutex<State>,
    per_client: usize,
}

struct State {
    free: usize,
    /// Clients holding or waiting for slots; an entry goes when it holds none and waits for none.
    clients: HashMap<IpAddr, Client>,
    /// Clients with a waiting call and room under their cap, in the order they are served.
    turn: VecDeque<IpAddr>,
}

#[derive(Default)]
struct Client {
    holding: usize,
    /// Calls waiting for a slot, first come first served within the client.
    waiting: VecDeque<oneshot::Sender<Slot>>,
    /// Whether the client is in `turn`.
    queued: bool,
}

/// One slot of a [`FairShare`], given back when dropped.
pub struct Slot {
    /// `None` once disarmed (a slot that never reached its caller).
    share: Option<Arc<FairShare>>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(share) = self.share.take() {
            share.release(self.client);
        }
    }
}

impl FairShare {
    /// `slots` in all, at most `per_client` of them held by one client (both at least 1).
    pub fn new(slots: usize, per_client: usize) -> Arc<FairShare> {
        Arc::new(FairShare {
            state: Mutex::new(State { free: slots.max(1), clients: HashMap::new(), turn: VecDeque::new() }),
            per_client: per_client.clamp(1, slots.max(1)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent counts.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for `client`. Dropping the future gives up the place in the queue (or the
    /// slot, if one was already handed to it).
    pub async fn acquire(self: &Arc<Self>, client: IpAddr) -> Slot {
        let waiting = {
            let mut state = self.lock();
            let State { free, clients, turn } = &mut *state;
            let c = clients.entry(client).or_default();
            if *free > 0 && c.holding < self.per_client && c.waiting.is_empty() {
                *free -= 1;
                c.holding += 1;
                return Slot { share: Some(self.clone()), client };
            }
            let (tx, rx) = oneshot::channel();
            c.waiting.push_back(tx);
            if !c.queued && c.holding < self.per_client {
                c.queued = true;
                turn.push_back(client);
            }
            // A free slot with a queued client cannot last: it is handed out right away.
            self.hand_out(&mut state);
            rx
        };
        waiting.await.expect("a waiter's sender is only dropped after sending or with its receiver")
    }

    fn release(self: &Arc<Self>, client: IpAddr) {
        let mut state = self.lock();
        let State { free, clients, turn } = &mut *state;
        *free += 1;
        if let Some(c) = clients.get_mut(&client) {
            c.holding -= 1;
            if !c.waiting.is_empty() && !c.queued {
                c.queued = true;
                turn.push_back(client);
            }
            if c.holding == 0 && c.waiting.is_empty() && !c.queued {
                clients.remove(&client);
            }
        }
        self.hand_out(&mut state);
    }

    /// Gives free slots to queued clients, one call per client per turn.
    fn hand_out(self: &Arc<Self>, state: &mut State) {
        let State { free, clients, turn } = state;
        while *free > 0 {
            let Some(ip) = turn.pop_front() else { break };
            let Some(c) = clients.get_mut(&ip) else { continue };
            c.queued = false;
            while let Some(tx) = c.waiting.pop_front() {
                match tx.send(Slot { share: Some(self.clone()), client: ip }) {
                    Ok(()) => {
                        *free -= 1;
                        c.holding += 1;
                        break;
                    }
                    // The caller gave up waiting; its slot was never held.
                    Err(mut slot) => slot.share = None,
                }
            }
            if !c.waiting.is_empty() && c.holding < self.per_client {
                c.queued = true;
                turn.push_back(ip);
            } else if c.holding == 0 && c.waiting.is_empty() {
                clients.remove(&ip);
            }
        }
    }

    /// Clients holding or waiting for slots (for tests).
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.lock().clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    async fn granted(share: &Arc<FairShare>, client: IpAddr) -> Option<Slot> {
        tokio::time::timeout(Duration::from_millis(50), share.acquire(client)).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn one_client_cannot_take_more_than_its_cap() {
        let share = FairShare::new(4, 3);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(granted(&share, ip(1)).await.expect("under the cap"));
        }
        assert!(granted(&share, ip(1)).await.is_none(), "a fourth slot for the same client");
        let other = granted(&share, ip(2)).await.expect("the slot left for another client");
        drop(other);
        drop(held);
        assert_eq!(share.clients(), 0, "idle clients are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_slot_goes_to_the_next_client_not_the_longest_queue() {
        let share = FairShare::new(1, 1);
        let first = share.acquire(ip(1)).await;
        // Client 1 queues many calls, then client 2 one.
        let mut flood = Vec::new();
        for _ in 0..10 {
            let share = share.clone();
            flood.push(tokio::spawn(async move { drop(share.acquire(ip(1)).await) }));
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let share2 = share.clone();
        let (tx, rx) = oneshot::channel();
        let other = tokio::spawn(async move {
            let slot = share2.acquire(ip(2)).await;
            tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(slot);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        // Client 2 gets the slot after at most one of client 1's calls, not after all ten.
        tokio::time::timeout(Duration::from_millis(100), rx)
            .await
            .expect("client 2 served in its turn")
            .unwrap();
        let done_before = flood.iter().filter(|f| f.is_finished()).count();
        assert!(done_before <= 1, "{done_before} of client 1's calls ran before client 2's");
        other.await.unwrap();
        for f in flood {
            f.await.unwrap();
        }
        assert_eq!(share.clients(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_gives_its_turn_away() {
        let share = FairShare::new(1, 1);
        let held = share.acquire(ip(1)).await;
        assert!(granted(&share, ip(2)).await.is_none(), "no free slot");
        drop(held);
        // The cancelled wait of client 2 must not keep the slot.
        assert!(granted(&share, ip(3)).await.is_some());
        assert_eq!(share.clients(), 0);
    }
}
