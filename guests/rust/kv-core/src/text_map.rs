//! [`TextMap`]: an ordered map from string keys to JSON values, held as the text of a JSON
//! object's members, `"key":value,`, in pages of a few KiB.
//!
//! kv's state is one JSON object of its entries, and the state is written inside the pause of
//! a hot swap. Held one allocation per entry, a 1 MiB state (57,000 keys) was written as
//! 57,000 runs of bytes, each found through the tree and copied on its own: about 2 ms of the
//! pause. Held in pages, the same state is a few hundred runs of up to a few KiB, one copy
//! each. The price is paid by a put or a delete: it moves the rest of its page (at most a few
//! KiB) to make room or close the gap, and the offsets of the entries after it in that page.
//!
//! Each entry's text is the key as serde_json writes a string and its value as serde_json
//! writes a [`Value`] (compact, object keys in order), so the members written here are byte
//! for byte what serde_json writes for the same map.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A page is split in two once its text grows past this many bytes (a page of one entry
/// holds that entry whatever its size). Small enough that a put moves little, large enough
/// that writing the state copies few runs.
const PAGE_BYTES: usize = 4096;

/// A page whose text shrank under this many bytes takes in the page after it, when both fit
/// in one, so that deletes do not leave the map in slivers.
const PAGE_MERGE_BYTES: usize = PAGE_BYTES / 4;

/// Entries in key order. Invariants: each page holds the keys from the key it is filed under
/// up to the key of the next page, and the first page is filed under the empty key (the
/// least there is), so every key has a page to go to once there is one.
#[derive(Clone, Default)]
pub struct TextMap {
    pages: BTreeMap<Box<str>, Page>,
    len: usize,
}

/// A run of consecutive entries.
#[derive(Clone, Default)]
struct Page {
    /// `"key":value,` for each entry, in key order: every entry ends with a comma.
    text: Vec<u8>,
    /// Each entry's key, in order, and where its text starts in `text`.
    slots: Vec<Slot>,
}

#[derive(Clone)]
struct Slot {
    key: Box<str>,
    /// Where the entry's text starts.
    start: usize,
    /// Where its value starts: after the key's JSON text and the colon.
    value_at: usize,
}

/// Writing a string or a `Value` as JSON fails only for a map whose keys are not strings,
/// which a `Value` cannot hold.
fn cannot_encode(error: serde_json::Error) -> String {
    format!("cannot encode as JSON: {error}")
}

/// Moves the bytes appended to `text` since `appended_at` to `at`, and what lay at
/// `at..appended_at` after them.
fn move_appended(text: &mut [u8], at: usize, appended_at: usize) {
    let appended = text.len() - appended_at;
    text[at..].rotate_right(appended);
}

impl Page {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.slots.binary_search_by(|slot| (*slot.key).cmp(key))
    }

    /// Where entry `i`'s text ends, its comma included.
    fn end(&self, i: usize) -> usize {
        self.slots
            .get(i + 1)
            .map_or(self.text.len(), |next| next.start)
    }

    /// Entry `i`'s value, without its comma.
    fn value(&self, i: usize) -> &[u8] {
        &self.text[self.slots[i].value_at..self.end(i) - 1]
    }

    /// Moves the entries from `i` on by `by` bytes, after their text moved.
    fn shift(&mut self, i: usize, by: isize) {
        for slot in &mut self.slots[i..] {
            slot.start = slot.start.wrapping_add_signed(by);
            slot.value_at = slot.value_at.wrapping_add_signed(by);
        }
    }

    /// Writes a new entry for `key` as entry `i`.
    fn insert(&mut self, i: usize, key: Box<str>, value: &Value) -> Result<(), String> {
        let at = self.slots.get(i).map_or(self.text.len(), |slot| slot.start);
        let appended_at = self.text.len();
        let written = serde_json::to_writer(&mut self.text, &*key).and_then(|()| {
            self.text.push(b':');
            let value_at = self.text.len() - appended_at;
            serde_json::to_writer(&mut self.text, value)?;
            self.text.push(b',');
            Ok(value_at)
        });
        let value_at = match written {
            Ok(value_at) => value_at,
            Err(error) => {
                self.text.truncate(appended_at);
                return Err(cannot_encode(error));
            }
        };
        let length = self.text.len() - appended_at;
        move_appended(&mut self.text, at, appended_at);
        self.shift(i, length as isize);
        self.slots.insert(
            i,
            Slot {
                key,
                start: at,
                value_at: at + value_at,
            },
        );
        Ok(())
    }

    /// Writes `value` over entry `i`'s value, and returns the value it replaced.
    fn replace(&mut self, i: usize, value: &Value) -> Result<Vec<u8>, String> {
        let replaced = self.value(i).to_vec();
        let at = self.slots[i].value_at;
        let appended_at = self.text.len();
        if let Err(error) = serde_json::to_writer(&mut self.text, value) {
            self.text.truncate(appended_at);
            return Err(cannot_encode(error));
        }
        let length = self.text.len() - appended_at;
        move_appended(&mut self.text, at, appended_at);
        // The old value now follows the new one.
        self.text.drain(at + length..at + length + replaced.len());
        self.shift(i + 1, length as isize - replaced.len() as isize);
        Ok(replaced)
    }

    /// Takes entry `i` out, and returns its value.
    fn remove(&mut self, i: usize) -> Vec<u8> {
        let removed = self.value(i).to_vec();
        let (start, end) = (self.slots[i].start, self.end(i));
        self.text.drain(start..end);
        self.slots.remove(i);
        self.shift(i, -((end - start) as isize));
        removed
    }

    /// Whether the page has grown past [`PAGE_BYTES`] and can be split.
    fn overfull(&self) -> bool {
        self.text.len() > PAGE_BYTES && self.slots.len() > 1
    }

    /// Splits the page until no part of it is overfull, and returns the parts after the
    /// first (which stays here), in order, each with the key to file it under. Split in
    /// halves by bytes: one split, unless a large value came into a full page.
    fn split(&mut self) -> Vec<(Box<str>, Page)> {
        if !self.overfull() {
            return Vec::new();
        }
        let half = self.text.len() / 2;
        let mid = self
            .slots
            .partition_point(|slot| slot.start < half)
            .clamp(1, self.slots.len() - 1);
        let (filed_under, mut second) = self.split_off(mid);
        let mut parts = self.split();
        let later = second.split();
        parts.push((filed_under, second));
        parts.extend(later);
        parts
    }

    /// Moves the entries from `mid` on (at least one) to a new page, and returns it with the
    /// key to file it under (its first).
    fn split_off(&mut self, mid: usize) -> (Box<str>, Page) {
        let cut = self.slots[mid].start;
        let mut second = Page {
            text: self.text[cut..].to_vec(),
            slots: self.slots.split_off(mid),
        };
        second.shift(0, -(cut as isize));
        self.text.truncate(cut);
        // A page split as it grew holds up to twice what it uses; give the room back.
        self.text.shrink_to_fit();
        self.slots.shrink_to_fit();
        (second.slots[0].key.clone(), second)
    }

    /// Takes in the entries of `next`, whose keys all sort after this page's.
    fn append(&mut self, next: Page) {
        let base = self.text.len();
        self.text.extend_from_slice(&next.text);
        self.slots.extend(next.slots.into_iter().map(|slot| Slot {
            start: slot.start + base,
            value_at: slot.value_at + base,
            ..slot
        }));
    }
}

impl TextMap {
    /// A map of `pairs`, in any order; of pairs with the same key, the last one wins.
    pub fn from_pairs(mut pairs: Vec<(String, Value)>) -> Result<TextMap, String> {
        // Stable, and linear on pairs that arrive sorted, as a state does.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = TextMap::default();
        let mut page = Page::default();
        let mut filed_under: Box<str> = Box::from("");
        let mut pairs = pairs.into_iter().peekable();
        while let Some((key, value)) = pairs.next() {
            if pairs.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            let last = page.slots.len();
            page.insert(last, key.into_boxed_str(), &value)?;
            map.len += 1;
            if page.overfull() {
                // The entry that did not fit starts the next page.
                let (next_key, next) = page.split_off(last);
                let full = std::mem::replace(&mut page, next);
                map.pages
                    .insert(std::mem::replace(&mut filed_under, next_key), full);
            }
        }
        if map.len > 0 {
            map.pages.insert(filed_under, page);
        }
        Ok(map)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The JSON text of `key`'s value.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let page = self.page_of(key)?;
        let i = page.find(key).ok()?;
        Some(page.value(i))
    }

    /// Sets `key` to `value`, and returns the JSON text of the value it replaced.
    pub fn insert(&mut self, key: String, value: &Value) -> Result<Option<Vec<u8>>, String> {
        if self.pages.is_empty() {
            self.pages.insert(Box::from(""), Page::default());
        }
        let Some((_, page)) = self
            .pages
            .range_mut::<str, _>((Bound::Unbounded, Bound::Included(key.as_str())))
            .next_back()
        else {
            return Err("the map lost its first page".into());
        };
        let replaced = match page.find(&key) {
            Ok(i) => Some(page.replace(i, value)?),
            Err(i) => {
                page.insert(i, key.into_boxed_str(), value)?;
                self.len += 1;
                None
            }
        };
        for (filed_under, part) in page.split() {
            self.pages.insert(filed_under, part);
        }
        Ok(replaced)
    }

    /// Takes `key` out, and returns the JSON text of its value.
    pub fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let (filed_under, page) = self
            .pages
            .range_mut::<str, _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        let i = page.find(key).ok()?;
        let removed = page.remove(i);
        self.len -= 1;
        if page.text.len() < PAGE_MERGE_BYTES {
            let filed_under = filed_under.clone();
            self.mend(&filed_under);
        }
        Some(removed)
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pages
            .values()
            .flat_map(|page| page.slots.iter().map(|slot| &*slot.key))
    }

    /// Every key and the JSON text of its value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pages.values().flat_map(|page| {
            (0..page.slots.len()).map(move |i| (&*page.slots[i].key, page.value(i)))
        })
    }

    /// Writes the members of the JSON object this map is, `"a":1,"b":2`, at the end of `out`.
    pub fn write_members(&self, out: &mut Vec<u8>) {
        for page in self.pages.values() {
            out.extend_from_slice(&page.text);
        }
        if self.len > 0 {
            // The last entry's comma.
            out.pop();
        }
    }

    /// The page `key` belongs in.
    fn page_of(&self, key: &str) -> Option<&Page> {
        self.pages
            .range::<str, _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(_, page)| page)
    }

    /// After a delete from the page filed under `filed_under`, which is now small: takes in
    /// the next page if both fit in one (or if this one is empty: no page stays empty), and
    /// drops the page if it is empty and the last.
    fn mend(&mut self, filed_under: &str) {
        let Some(size) = self.pages.get(filed_under).map(|page| page.text.len()) else {
            return;
        };
        let next = self
            .pages
            .range::<str, _>((Bound::Excluded(filed_under), Bound::Unbounded))
            .next()
            .map(|(key, page)| (key.clone(), page.text.len()));
        match next {
            Some((next_key, next_size)) if size == 0 || size + next_size <= PAGE_BYTES => {
                let taken = self.pages.remove(&next_key);
                if let (Some(page), Some(next)) = (self.pages.get_mut(filed_under), taken) {
                    page.append(next);
                }
            }
            None if size == 0 => {
                self.pages.remove(filed_under);
            }
            _ => {}
        }
    }
}

/// Equal when they hold the same keys with the same values, however the pages fall.
impl PartialEq for TextMap {
    fn eq(&self, other: &TextMap) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// As a map of each key to its value's text, which is what a failed comparison should show.
impl fmt::Debug for TextMap {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(key, value)| (key, String::from_utf8_lossy(value))),
            )
            .finish()
    }
}

/// As a map of each key to its value, through serde_json's `RawValue`, for a state that
/// holds the map among other fields and so is written by `serde_json` (another serializer
/// would get the `RawValue`'s private shape). Each value's text is parsed again on the way,
/// to make the `RawValue`; kv's own snapshot writes [`TextMap::write_members`] instead.
impl Serialize for TextMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (key, value) in self.iter() {
            let raw: &RawValue = serde_json::from_slice(value).map_err(S::Error::custom)?;
            map.serialize_entry(key, raw)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Checks the invariants of `map`'s pages, and that it holds exactly `model`.
    fn check(map: &TextMap, model: &BTreeMap<String, Value>) {
        assert_eq!(map.len(), model.len());
        let mut members = Vec::new();
        map.write_members(&mut members);
        let object = serde_json::to_vec(model).unwrap();
        assert_eq!(members, object[1..object.len() - 1], "the members as text");
        for (key, value) in model {
            assert_eq!(map.get(key), Some(&serde_json::to_vec(value).unwrap()[..]));
        }
        assert!(map.keys().eq(model.keys().map(String::as_str)));
        if let Some((first, _)) = map.pages.first_key_value() {
            assert_eq!(&**first, "", "the first page is filed under the empty key");
        }
        let filed: Vec<&str> = map.pages.keys().map(|key| &**key).collect();
        for (n, page) in map.pages.values().enumerate() {
            assert!(!page.overfull(), "page {n} is {} bytes", page.text.len());
            let mut at = 0;
            for (i, slot) in page.slots.iter().enumerate() {
                assert_eq!(slot.start, at);
                assert!(*slot.key >= *filed[n]);
                if let Some(next) = filed.get(n + 1) {
                    assert!(*slot.key < **next);
                }
                let key = serde_json::to_vec(&*slot.key).unwrap();
                assert_eq!(&page.text[slot.start..slot.value_at - 1], &key[..]);
                at = page.end(i);
                assert_eq!(page.text[at - 1], b',');
            }
            assert_eq!(at, page.text.len());
        }
    }

    /// A small deterministic generator, so that a failure is found again.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn random_puts_and_deletes_match_a_btreemap() {
        let mut rng = Lcg(7);
        let mut map = TextMap::default();
        let mut model = BTreeMap::new();
        for step in 0..20_000 {
            // Few enough keys that puts replace and deletes hit; long values now and then,
            // so that pages split and merge; escapes in keys and values.
            let key = format!("k\"{}", rng.below(600));
            match rng.below(10) {
                0..=5 => {
                    let value = match rng.below(4) {
                        0 => json!(step),
                        1 => json!("x\n".repeat(rng.below(700) as usize)),
                        2 => json!({"b": [step, null], "a": 1.5}),
                        _ => json!(null),
                    };
                    let replaced = map.insert(key.clone(), &value).unwrap();
                    let before = model.insert(key, value);
                    assert_eq!(replaced, before.map(|v| serde_json::to_vec(&v).unwrap()));
                }
                _ => {
                    let removed = map.remove(&key);
                    let before = model.remove(&key);
                    assert_eq!(removed, before.map(|v| serde_json::to_vec(&v).unwrap()));
                }
            }
            if step % 97 == 0 {
                check(&map, &model);
            }
        }
        check(&map, &model);
        assert!(map.pages.len() > 10, "{} pages", map.pages.len());
        // Deleting everything leaves no page behind.
        let keys: Vec<String> = model.keys().cloned().collect();
        for key in keys {
            map.remove(&key);
            model.remove(&key);
        }
        check(&map, &model);
        assert!(map.pages.is_empty());
    }

    #[test]
    fn a_key_before_every_other_goes_to_the_first_page() {
        let mut map = TextMap::default();
        let mut model = BTreeMap::new();
        for i in (0..2_000).rev() {
            let key = format!("{i:05}");
            map.insert(key.clone(), &json!(i)).unwrap();
            model.insert(key, json!(i));
        }
        check(&map, &model);
        assert_eq!(map.get(""), None);
        map.insert(String::new(), &json!("least")).unwrap();
        model.insert(String::new(), json!("least"));
        check(&map, &model);
    }

    #[test]
    fn pairs_make_pages_in_order_and_the_last_of_a_key_wins() {
        let mut pairs: Vec<(String, Value)> =
            (0..5_000).map(|i| (format!("{i:05}"), json!(i))).collect();
        pairs.reverse();
        pairs.push(("00007".into(), json!("again")));
        let map = TextMap::from_pairs(pairs).unwrap();
        let mut model: BTreeMap<String, Value> =
            (0..5_000).map(|i| (format!("{i:05}"), json!(i))).collect();
        model.insert("00007".into(), json!("again"));
        check(&map, &model);
        assert!(map.pages.len() > 10, "{} pages", map.pages.len());
        assert_eq!(TextMap::from_pairs(Vec::new()).unwrap(), TextMap::default());
    }

    #[test]
    fn one_value_larger_than_a_page_has_a_page_of_its_own() {
        let mut map = TextMap::default();
        let mut model = BTreeMap::new();
        for key in ["a", "b", "c"] {
            let value = json!(key.repeat(3 * PAGE_BYTES));
            map.insert(key.into(), &value).unwrap();
            model.insert(key.to_string(), value);
        }
        check(&map, &model);
        assert_eq!(map.pages.len(), 3);
        // Into the middle of a full page: the half before it is still too large, and is
        // split again.
        let mut map = TextMap::default();
        let mut model = BTreeMap::new();
        for i in 0..250 {
            let key = format!("m{i:03}");
            map.insert(key.clone(), &json!(i)).unwrap();
            model.insert(key, json!(i));
        }
        let pages = map.pages.len();
        let value = json!("v".repeat(3 * PAGE_BYTES));
        map.insert("m100x".into(), &value).unwrap();
        model.insert("m100x".into(), value);
        check(&map, &model);
        assert!(
            map.pages.len() >= pages + 2,
            "{pages} pages, then {}",
            map.pages.len()
        );
    }

    #[test]
    fn maps_are_equal_whatever_their_pages() {
        let pairs: Vec<(String, Value)> = (0..3_000).map(|i| (format!("{i}"), json!(i))).collect();
        let built = TextMap::from_pairs(pairs.clone()).unwrap();
        let mut inserted = TextMap::default();
        for (key, value) in pairs.into_iter().rev() {
            inserted.insert(key, &value).unwrap();
        }
        assert_ne!(
            built.pages.keys().collect::<Vec<_>>(),
            inserted.pages.keys().collect::<Vec<_>>()
        );
        assert_eq!(built, inserted);
        inserted.insert("0".into(), &json!(1)).unwrap();
        assert_ne!(built, inserted);
    }
}
