//! A growable bit set over agent slots. The allocator keeps one for agents
//! with free unreserved resources and one per framework for the agents it
//! filters, so finding a framework's next candidate agent is a word-wise
//! AND-NOT scan instead of a hash lookup per agent.

#[derive(Debug, Clone, Default)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub fn set(&mut self, i: usize) {
        let w = i / 64;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (i % 64);
    }

    pub fn clear(&mut self, i: usize) {
        if let Some(word) = self.words.get_mut(i / 64) {
            *word &= !(1 << (i % 64));
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn clear_all(&mut self) {
        self.words.clear();
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The first index `>= from` that is in `self` and not in `minus`.
    pub fn next_and_not(&self, minus: &BitSet, from: usize) -> Option<usize> {
        let mut w = from / 64;
        if w >= self.words.len() {
            return None;
        }
        let mut word = self.words[w] & !minus.words.get(w).copied().unwrap_or(0);
        word &= u64::MAX << (from % 64);
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            if w >= self.words.len() {
                return None;
            }
            word = self.words[w] & !minus.words.get(w).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_not_skips_masked_bits() {
        let mut a = BitSet::default();
        let mut m = BitSet::default();
        for i in [3, 64, 65, 200] {
            a.set(i);
        }
        m.set(64);
        assert_eq!(a.next_and_not(&m, 0), Some(3));
        assert_eq!(a.next_and_not(&m, 4), Some(65));
        assert_eq!(a.next_and_not(&m, 66), Some(200));
        assert_eq!(a.next_and_not(&m, 201), None);
        a.clear(3);
        assert!(!a.get(3));
        assert_eq!(a.count(), 3);
    }
}
