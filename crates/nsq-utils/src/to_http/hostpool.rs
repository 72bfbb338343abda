//! Host selection for `--mode=hostpool` and `--mode=epsilon-greedy`, following
//! `bitly/go-hostpool`: round-robin that skips hosts marked dead until their retry time (30 s,
//! doubling up to 15 min), and an epsilon-greedy variant that mostly picks hosts in proportion
//! to the inverse of their recent average response time.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const INITIAL_RETRY_DELAY: Duration = Duration::from_secs(30);
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(900);
const EPSILON_BUCKETS: usize = 120;
const EPSILON_DECAY: f32 = 0.90;
const MIN_EPSILON: f32 = 0.01;
const INITIAL_EPSILON: f32 = 0.3;
const DECAY_DURATION: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Entry {
    host: String,
    dead: bool,
    next_retry: Instant,
    retry_delay: Duration,
    // Response-time buckets for epsilon-greedy: the sum of milliseconds and the count of
    // successful requests per bucket; the current bucket moves on every decay period.
    eps_counts: Vec<i64>,
    eps_values: Vec<i64>,
    eps_index: usize,
}

impl Entry {
    fn can_try(&self, now: Instant) -> bool {
        !self.dead || self.next_retry < now
    }

    fn will_retry(&mut self, now: Instant) {
        self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY_INTERVAL);
        self.next_retry = now + self.retry_delay;
    }

    /// Older buckets weigh less; an empty bucket repeats the previous bucket's average.
    fn weighted_average_response_time(&self) -> f64 {
        let mut value = 0.0;
        let mut last = 0.0;
        for i in 1..=EPSILON_BUCKETS {
            let pos = (self.eps_index + i) % EPSILON_BUCKETS;
            let count = self.eps_counts.get(pos).copied().unwrap_or(0);
            let weight = i as f64 / EPSILON_BUCKETS as f64;
            if count > 0 {
                let current = self.eps_values.get(pos).copied().unwrap_or(0) as f64 / count as f64;
                value += current * weight;
                last = current;
            } else {
                value += last * weight;
            }
        }
        value
    }
}

#[derive(Debug)]
struct State {
    entries: Vec<Entry>,
    next_index: usize,
    epsilon: f32,
    last_decay: Instant,
}

/// A pool of hosts shared by every handler.
#[derive(Debug, Clone)]
pub(crate) struct HostPool {
    state: Arc<Mutex<State>>,
    greedy: bool,
}

/// The host chosen for one request; report the outcome with [`HostResponse::mark`].
#[derive(Debug)]
pub(crate) struct HostResponse {
    pool: HostPool,
    index: usize,
    host: String,
    started: Instant,
}

impl HostPool {
    /// Plain round-robin with failure avoidance (`--mode=hostpool`).
    pub(crate) fn new(hosts: &[String]) -> HostPool {
        HostPool::build(hosts, false)
    }

    /// `--mode=epsilon-greedy`.
    pub(crate) fn epsilon_greedy(hosts: &[String]) -> HostPool {
        HostPool::build(hosts, true)
    }

    fn build(hosts: &[String], greedy: bool) -> HostPool {
        let now = Instant::now();
        let entries = hosts
            .iter()
            .map(|h| Entry {
                host: h.clone(),
                dead: false,
                next_retry: now,
                retry_delay: INITIAL_RETRY_DELAY,
                eps_counts: vec![0; if greedy { EPSILON_BUCKETS } else { 0 }],
                eps_values: vec![0; if greedy { EPSILON_BUCKETS } else { 0 }],
                eps_index: 0,
            })
            .collect();
        HostPool {
            state: Arc::new(Mutex::new(State {
                entries,
                next_index: 0,
                epsilon: INITIAL_EPSILON,
                last_decay: now,
            })),
            greedy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Picks a host; `None` only for an empty pool.
    pub(crate) fn get(&self) -> Option<HostResponse> {
        let now = Instant::now();
        let mut st = self.lock();
        if st.entries.is_empty() {
            return None;
        }
        let index = if self.greedy {
            decay(&mut st, now);
            epsilon_greedy(&mut st, now)
        } else {
            round_robin(&mut st, now)
        };
        let host = st.entries.get(index)?.host.clone();
        Some(HostResponse {
            pool: self.clone(),
            index,
            host,
            started: Instant::now(),
        })
    }

    #[cfg(test)]
    fn is_dead(&self, index: usize) -> bool {
        self.lock().entries.get(index).is_some_and(|e| e.dead)
    }
}

impl HostResponse {
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Marks the request's outcome: a failure takes the host out of rotation until its retry
    /// time; a success brings it back and, for epsilon-greedy, records the response time.
    pub(crate) fn mark(self, ok: bool) {
        let elapsed = self.started.elapsed();
        let now = Instant::now();
        let greedy = self.pool.greedy;
        let mut st = self.pool.lock();
        if greedy {
            decay(&mut st, now);
        }
        let Some(e) = st.entries.get_mut(self.index) else {
            return;
        };
        if ok {
            e.dead = false;
            if greedy {
                let i = e.eps_index;
                if let Some(c) = e.eps_counts.get_mut(i) {
                    *c += 1;
                }
                if let Some(v) = e.eps_values.get_mut(i) {
                    *v += (elapsed.as_secs_f64() * 1000.0) as i64;
                }
            }
        } else if !e.dead {
            e.dead = true;
            e.retry_delay = INITIAL_RETRY_DELAY;
            e.next_retry = now + e.retry_delay;
        }
    }
}

fn round_robin(st: &mut State, now: Instant) -> usize {
    let n = st.entries.len();
    for i in 0..n {
        let idx = (i + st.next_index) % n;
        let Some(e) = st.entries.get_mut(idx) else {
            continue;
        };
        if !e.dead {
            st.next_index = idx + 1;
            return idx;
        }
        if e.next_retry < now {
            e.will_retry(now);
            st.next_index = idx + 1;
            return idx;
        }
    }
    // Every host is dead: revive them all rather than refuse to answer.
    for e in &mut st.entries {
        e.dead = false;
    }
    st.next_index = 0;
    0
}

/// Moves every host's current bucket on by the decay periods that passed, clearing the
/// buckets it enters, so that old response times fade out.
fn decay(st: &mut State, now: Instant) {
    let period = DECAY_DURATION / EPSILON_BUCKETS as u32;
    let mut steps = 0;
    while now.duration_since(st.last_decay) >= period && steps < EPSILON_BUCKETS {
        st.last_decay += period;
        steps += 1;
        for e in &mut st.entries {
            e.eps_index = (e.eps_index + 1) % EPSILON_BUCKETS;
            if let Some(c) = e.eps_counts.get_mut(e.eps_index) {
                *c = 0;
            }
            if let Some(v) = e.eps_values.get_mut(e.eps_index) {
                *v = 0;
            }
        }
    }
    if steps == EPSILON_BUCKETS {
        st.last_decay = now;
    }
}

fn epsilon_greedy(st: &mut State, now: Instant) -> usize {
    if rand::random::<f32>() < st.epsilon {
        st.epsilon = (st.epsilon * EPSILON_DECAY).max(MIN_EPSILON);
        return round_robin(st, now);
    }
    let mut possible: Vec<(usize, f64)> = Vec::new();
    let mut sum = 0.0;
    for (i, e) in st.entries.iter().enumerate() {
        if e.can_try(now) {
            let v = e.weighted_average_response_time();
            if v > 0.0 {
                let score = 1.0 / v;
                sum += score;
                possible.push((i, score));
            }
        }
    }
    let pick = rand::random::<f64>();
    let mut ceiling = 0.0;
    let chosen = possible.iter().find_map(|(i, score)| {
        ceiling += score / sum;
        (pick <= ceiling).then_some(*i)
    });
    let Some(idx) = chosen else {
        return round_robin(st, now);
    };
    if let Some(e) = st.entries.get_mut(idx) {
        if e.dead {
            e.will_retry(now);
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    fn pick(p: &HostPool) -> String {
        let r = p.get().unwrap();
        let h = r.host().to_string();
        r.mark(true);
        h
    }

    #[test]
    fn rotates_from_the_first_host() {
        let p = HostPool::new(&hosts(3));
        let got: Vec<String> = (0..6).map(|_| pick(&p)).collect();
        assert_eq!(got, ["h0", "h1", "h2", "h0", "h1", "h2"]);
        assert!(HostPool::new(&[]).get().is_none());
    }

    #[test]
    fn failed_host_is_skipped_until_all_fail() {
        let p = HostPool::new(&hosts(3));
        let r = p.get().unwrap();
        assert_eq!(r.host(), "h0");
        r.mark(false);
        assert!(p.is_dead(0));
        let got: Vec<String> = (0..4).map(|_| pick(&p)).collect();
        assert_eq!(got, ["h1", "h2", "h1", "h2"]);
        for _ in 0..2 {
            p.get().unwrap().mark(false);
        }
        // All three dead: the pool revives them and starts over at the first.
        assert_eq!(pick(&p), "h0");
        assert!(!p.is_dead(1));
    }

    #[test]
    fn success_revives() {
        let p = HostPool::new(&hosts(2));
        p.get().unwrap().mark(false);
        assert!(p.is_dead(0));
        {
            let mut st = p.lock();
            st.entries[0].next_retry = Instant::now() - Duration::from_secs(1);
        }
        // Past its retry time the dead host is tried again, and a success revives it.
        assert_eq!(pick(&p), "h1");
        assert_eq!(pick(&p), "h0");
        assert!(!p.is_dead(0));
    }

    #[test]
    fn epsilon_greedy_prefers_the_faster_host() {
        let p = HostPool::epsilon_greedy(&hosts(2));
        {
            let mut st = p.lock();
            st.epsilon = 0.0;
            st.entries[0].eps_counts[0] = 10;
            st.entries[0].eps_values[0] = 10;
            st.entries[1].eps_counts[0] = 10;
            st.entries[1].eps_values[0] = 100_000;
        }
        let fast = (0..200).filter(|_| p.get().unwrap().host() == "h0").count();
        assert!(fast > 180, "{fast}");
    }

    #[test]
    fn epsilon_greedy_without_data_round_robins() {
        let p = HostPool::epsilon_greedy(&hosts(2));
        let got: Vec<String> = (0..4)
            .map(|_| p.get().unwrap().host().to_string())
            .collect();
        assert_eq!(got, ["h0", "h1", "h0", "h1"]);
    }
}
