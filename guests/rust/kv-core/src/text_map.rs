//! [`TextMap`]: an ordered map from string keys to JSON values, held as the text of a JSON
//! object's members, `"key":value,`, in pages of a few KiB.
//!
//! kv's state is one JSON object of its entries, and the state is written inside the pause of
//! a hot swap. Held one allocation per entry, a 0.9 MB state (57,000 keys) was written as
//! 57,000 runs of bytes, each found through the tree and copied on its own: about 2 ms of the
//! pause. Held in pages, the same state is a few hundred runs of up to 4 KiB, one copy each.
//! The price is paid by a put or a delete: it moves the rest of its page to make room or to
//! close the gap, and the offsets of the members after it in that page; and a put that
//! replaces a value, or a delete, copies the old value out for the reply.
//!
//! A member larger than a page has a page of its own, which a new key beside it never grows:
//! a put next to a 1 MiB value moves no more than a put anywhere else.
//!
//! Each member's text is the key as serde_json writes a string and its value as serde_json
//! writes a [`Value`] (compact, object keys in order), so the members written here are byte
//! for byte what serde_json writes for the same map.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A page is split once its text grows past this many bytes, unless it is one member.
/// Small enough that a put moves little, large enough that writing the state copies few runs.
const PAGE_BYTES: usize = 4096;

/// A page whose text a delete left under this many bytes goes into the page before it, or
/// takes in the page after it, if the two fit in one (an empty page gives its place to the
/// next), so that deletes do not leave the map in empty or nearly empty pages. Pages that a
/// delete leaves larger than this, or a put shrinks, stay as they are.
const PAGE_MERGE_BYTES: usize = PAGE_BYTES / 4;

/// Entries in key order. Invariants: each page holds the keys from the key it is filed under
/// up to the key of the next page; the first page is filed under the empty key (the least
/// there is), so every key has a page to go to once there is one; no page is empty; and a
/// page over [`PAGE_BYTES`] holds one member.
#[derive(Clone, Default)]
pub struct TextMap {
    pages: BTreeMap<Box<str>, Page>,
    len: usize,
}

/// A run of consecutive members.
#[derive(Clone, Default)]
struct Page {
    /// `"key":value,` for each member, in key order: every member ends with a comma.
    text: Vec<u8>,
    /// Each member's key, in order, and where its text is in `text`.
    members: Vec<Member>,
}

/// Where one member's text is in its page.
#[derive(Clone)]
struct Member {
    key: Box<str>,
    /// Where the member's text starts.
    start: usize,
    /// Where its value starts: after the key's JSON text and the colon.
    value_at: usize,
}

/// Writing a string or a `Value` as JSON fails only for a map whose keys are not strings,
/// which a `Value` cannot hold.
fn cannot_encode(error: serde_json::Error) -> String {
    format!("cannot encode as JSON: {error}")
}

/// Writes `"key":value,` at the end of `out`, and returns where the value starts. On an
/// error, `out` is left as it was.
fn write_member(out: &mut Vec<u8>, key: &str, value: &Value) -> Result<usize, String> {
    let before = out.len();
    let written = serde_json::to_writer(&mut *out, key).and_then(|()| {
        out.push(b':');
        let value_at = out.len();
        serde_json::to_writer(&mut *out, value)?;
        out.push(b',');
        Ok(value_at)
    });
    written.map_err(|error| {
        out.truncate(before);
        cannot_encode(error)
    })
}

impl Page {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.members
            .binary_search_by(|member| (*member.key).cmp(key))
    }

    /// Where member `i`'s text ends, its comma included.
    fn end(&self, i: usize) -> usize {
        self.members
            .get(i + 1)
            .map_or(self.text.len(), |next| next.start)
    }

    /// Member `i`'s value, without its comma.
    fn value(&self, i: usize) -> &[u8] {
        &self.text[self.members[i].value_at..self.end(i) - 1]
    }

    /// Moves the members from `i` on by `by` bytes, after their text moved.
    fn shift(&mut self, i: usize, by: isize) {
        for member in &mut self.members[i..] {
            member.start = member.start.wrapping_add_signed(by);
            member.value_at = member.value_at.wrapping_add_signed(by);
        }
    }

    /// A page of one member that is larger than a page.
    fn is_large(&self) -> bool {
        self.text.len() > PAGE_BYTES
    }

    /// Writes a member for `key` after every member there: for keys that come in order.
    fn push(&mut self, key: Box<str>, value: &Value) -> Result<(), String> {
        let start = self.text.len();
        let value_at = write_member(&mut self.text, &key, value)?;
        self.members.push(Member {
            key,
            start,
            value_at,
        });
        Ok(())
    }

    /// Writes a member for `key` as member `i`.
    fn insert(&mut self, i: usize, key: Box<str>, value: &Value) -> Result<(), String> {
        let mut text = Vec::with_capacity(key.len() + 32);
        let value_at = write_member(&mut text, &key, value)?;
        let at = self
            .members
            .get(i)
            .map_or(self.text.len(), |next| next.start);
        self.text.splice(at..at, text.iter().copied());
        self.shift(i, text.len() as isize);
        self.members.insert(
            i,
            Member {
                key,
                start: at,
                value_at: at + value_at,
            },
        );
        Ok(())
    }

    /// Writes `value` over member `i`'s value, and returns the value it replaced.
    fn replace(&mut self, i: usize, value: &Value) -> Result<Vec<u8>, String> {
        let text = serde_json::to_vec(value).map_err(cannot_encode)?;
        let (from, to) = (self.members[i].value_at, self.end(i) - 1);
        let replaced: Vec<u8> = self.text.splice(from..to, text.iter().copied()).collect();
        self.shift(i + 1, text.len() as isize - replaced.len() as isize);
        self.give_back_room();
        Ok(replaced)
    }

    /// Takes member `i` out, and returns its value.
    fn remove(&mut self, i: usize) -> Vec<u8> {
        let removed = self.value(i).to_vec();
        let (start, end) = (self.members[i].start, self.end(i));
        self.text.drain(start..end);
        self.members.remove(i);
        self.shift(i, -((end - start) as isize));
        self.give_back_room();
        removed
    }

    /// After a page lost most of its text (a delete, or a large value replaced by a small
    /// one), gives the room back, keeping twice what it holds.
    fn give_back_room(&mut self) {
        if self.text.capacity() > 4 * self.text.len().max(PAGE_MERGE_BYTES) {
            self.text.shrink_to(2 * self.text.len());
            self.members.shrink_to(2 * self.members.len());
        }
    }

    /// Whether the page has grown past [`PAGE_BYTES`] with more than one member.
    fn overfull(&self) -> bool {
        self.is_large() && self.members.len() > 1
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
            .members
            .partition_point(|member| member.start < half)
            .clamp(1, self.members.len() - 1);
        let (filed_under, mut second) = self.split_off(mid);
        let mut parts = self.split();
        let later = second.split();
        parts.push((filed_under, second));
        parts.extend(later);
        parts
    }

    /// Moves the members from `mid` on (at least one) to a new page, and returns it with the
    /// key to file it under (its first).
    fn split_off(&mut self, mid: usize) -> (Box<str>, Page) {
        let cut = self.members[mid].start;
        let mut second = Page {
            text: self.text[cut..].to_vec(),
            members: self.members.split_off(mid),
        };
        second.shift(0, -(cut as isize));
        self.text.truncate(cut);
        // A page split as it grew holds up to twice what it uses; give the room back.
        self.text.shrink_to_fit();
        self.members.shrink_to_fit();
        (second.members[0].key.clone(), second)
    }

    /// Takes in the members of `next`, whose keys all sort after this page's.
    fn append(&mut self, next: Page) {
        let base = self.text.len();
        self.text.extend_from_slice(&next.text);
        self.members
            .extend(next.members.into_iter().map(|member| Member {
                start: member.start + base,
                value_at: member.value_at + base,
                ..member
            }));
    }
}

impl TextMap {
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

    /// Sets `key` to `value`, for a map read in key order (a state): written after the last
    /// member when `key` sorts after it, with no search and no copy, and as
    /// [`insert`](Self::insert) does otherwise (a later duplicate replaces the earlier one).
    pub fn push(&mut self, key: String, value: &Value) -> Result<(), String> {
        let Some(mut last) = self.pages.last_entry() else {
            return self.insert(key, value).map(drop);
        };
        let page = last.get_mut();
        let in_order = page.members.last().is_none_or(|last| *last.key < *key);
        if !in_order || page.is_large() {
            return self.insert(key, value).map(drop);
        }
        page.push(key.into_boxed_str(), value)?;
        self.len += 1;
        if page.overfull() {
            // The member that did not fit starts the next page.
            let last = page.members.len() - 1;
            let (filed_under, next) = page.split_off(last);
            self.pages.insert(filed_under, next);
        }
        Ok(())
    }

    /// Sets `key` to `value`, and returns the JSON text of the value it replaced.
    pub fn insert(&mut self, key: String, value: &Value) -> Result<Option<Vec<u8>>, String> {
        if self.pages.is_empty() {
            let mut first = Page::default();
            first.push(key.into_boxed_str(), value)?;
            self.pages.insert(Box::from(""), first);
            self.len = 1;
            return Ok(None);
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
            Err(i) if page.is_large() => {
                // Beside a member larger than a page: a page of its own, not a copy of that one.
                let key = key.into_boxed_str();
                let mut own = Page::default();
                own.push(key.clone(), value)?;
                if i == 0 {
                    // Before it: the new page takes its place, and it is filed under its key.
                    let large = std::mem::replace(page, own);
                    self.pages.insert(large.members[0].key.clone(), large);
                } else {
                    self.pages.insert(key, own);
                }
                self.len += 1;
                return Ok(None);
            }
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
            .flat_map(|page| page.members.iter().map(|member| &*member.key))
    }

    /// Every key and the JSON text of its value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pages.values().flat_map(|page| {
            (0..page.members.len()).map(move |i| (&*page.members[i].key, page.value(i)))
        })
    }

    /// How many bytes [`write_members`](Self::write_members) writes: a sum over the pages.
    pub fn members_len(&self) -> usize {
        let text: usize = self.pages.values().map(|page| page.text.len()).sum();
        // Less the last member's comma.
        text.saturating_sub(1)
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

    /// After a delete from the page filed under `filed_under`, which is now small: an empty
    /// page gives its place (and its key, a lower bound of the next page's keys too) to the
    /// next one, whose text does not move, or is dropped if it is the last; a page that is
    /// not empty goes into the page before it, or takes in the page after it, if the two fit
    /// in one.
    fn mend(&mut self, filed_under: &str) {
        let Some(size) = self.pages.get(filed_under).map(|page| page.text.len()) else {
            return;
        };
        let next = self
            .pages
            .range::<str, _>((Bound::Excluded(filed_under), Bound::Unbounded))
            .next()
            .map(|(key, page)| (key.clone(), page.text.len()));
        if size == 0 {
            let taken = next.and_then(|(next_key, _)| self.pages.remove(&next_key));
            match (self.pages.get_mut(filed_under), taken) {
                (Some(page), Some(next)) => *page = next,
                _ => {
                    self.pages.remove(filed_under);
                }
            }
            return;
        }
        let previous = self
            .pages
            .range::<str, _>((Bound::Unbounded, Bound::Excluded(filed_under)))
            .next_back()
            .filter(|(_, page)| page.text.len() + size <= PAGE_BYTES)
            .map(|(key, _)| key.clone());
        if let Some(previous) = previous {
            let taken = self.pages.remove(filed_under);
            if let (Some(page), Some(this)) = (self.pages.get_mut(&previous), taken) {
                page.append(this);
            }
        } else if let Some((next_key, next_size)) = next
            && size + next_size <= PAGE_BYTES
        {
            let taken = self.pages.remove(&next_key);
            if let (Some(page), Some(next)) = (self.pages.get_mut(filed_under), taken) {
                page.append(next);
            }
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
        assert_eq!(map.members_len(), members.len());
        assert_eq!(serde_json::to_vec(map).unwrap(), object, "as serialized");
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
            assert!(!page.members.is_empty(), "page {n} is empty");
            let mut at = 0;
            for (i, member) in page.members.iter().enumerate() {
                assert_eq!(member.start, at);
                assert!(*member.key >= *filed[n]);
                if let Some(next) = filed.get(n + 1) {
                    assert!(*member.key < **next);
                }
                let key = serde_json::to_vec(&*member.key).unwrap();
                assert_eq!(&page.text[member.start..member.value_at - 1], &key[..]);
                at = page.end(i);
                assert_eq!(page.text[at - 1], b',');
            }
            assert_eq!(at, page.text.len());
        }
    }

    /// A map read as a state is: each pair pushed in the order given.
    fn read(pairs: impl IntoIterator<Item = (String, Value)>) -> TextMap {
        let mut map = TextMap::default();
        for (key, value) in pairs {
            map.push(key, &value).unwrap();
        }
        map
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

    /// Keys that sort first, need escapes, or are not ASCII, from a few hundred.
    fn awkward_key(rng: &mut Lcg) -> String {
        let k = rng.below(400);
        match k % 6 {
            0 => format!("\u{0}{k}"),
            1 => format!("é\\{k}\u{1f}"),
            2 => format!("🦀{k}"),
            3 => "\"".repeat((k % 40) as usize),
            _ => format!("k{k:03}"),
        }
    }

    /// Values with escapes, floats, nesting, and now and then larger than a page.
    fn awkward_value(rng: &mut Lcg, step: u64) -> Value {
        match rng.below(7) {
            0 => json!(step),
            1 => json!("x\n".repeat(rng.below(700) as usize)),
            2 => json!("\u{1}".repeat(rng.below(2 * PAGE_BYTES as u64) as usize)),
            3 => json!({"b": [step, null, [[]]], "a": -0.0}),
            4 => json!(1e300),
            _ => json!(null),
        }
    }

    #[test]
    fn random_puts_and_deletes_match_a_btreemap() {
        let mut rng = Lcg(7);
        // Read from a state out of order and with duplicates, then changed at random: few
        // enough keys that puts replace and deletes hit, so that pages split and merge.
        let mut model = BTreeMap::new();
        let mut pairs = Vec::new();
        for step in 0..500 {
            let (key, value) = (awkward_key(&mut rng), awkward_value(&mut rng, step));
            model.insert(key.clone(), value.clone());
            pairs.push((key, value));
        }
        let mut map = read(pairs);
        check(&map, &model);
        for step in 0..15_000 {
            let key = awkward_key(&mut rng);
            match rng.below(10) {
                0..=4 => {
                    let value = awkward_value(&mut rng, step);
                    let replaced = map.insert(key.clone(), &value).unwrap();
                    let before = model.insert(key, value);
                    assert_eq!(replaced, before.map(|v| serde_json::to_vec(&v).unwrap()));
                }
                5 => {
                    let expected = model.get(&key).map(|v| serde_json::to_vec(v).unwrap());
                    assert_eq!(map.get(&key).map(<[u8]>::to_vec), expected);
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
        // Deleting everything, in an order of its own, leaves no page behind.
        let mut keys: Vec<String> = model.keys().cloned().collect();
        while !keys.is_empty() {
            let key = keys.swap_remove(rng.below(keys.len() as u64) as usize);
            assert!(map.remove(&key).is_some());
            model.remove(&key);
            if keys.len().is_multiple_of(17) {
                check(&map, &model);
            }
        }
        assert!(map.pages.is_empty());
        assert_eq!(map, TextMap::default());
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
    fn a_state_read_in_order_fills_its_pages_and_the_last_of_a_key_wins() {
        let in_order: Vec<(String, Value)> =
            (0..5_000).map(|i| (format!("{i:05}"), json!(i))).collect();
        let model: BTreeMap<String, Value> = in_order.iter().cloned().collect();
        let map = read(in_order.clone());
        check(&map, &model);
        // Every page but the last is filled to within one member of its size.
        let pages: Vec<&Page> = map.pages.values().collect();
        for page in &pages[..pages.len() - 1] {
            assert!(page.text.len() > PAGE_BYTES - 16, "{}", page.text.len());
        }
        // Out of order, and a key twice: the later one wins.
        let mut shuffled = in_order;
        shuffled.reverse();
        shuffled.insert(2_000, ("00007".into(), json!("first")));
        shuffled.push(("00007".into(), json!("again")));
        let mut model = model;
        model.insert("00007".into(), json!("again"));
        check(&read(shuffled), &model);
        assert_eq!(read(Vec::new()), TextMap::default());
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
    fn a_large_value_is_neither_copied_nor_grown_by_the_keys_around_it() {
        let mut map = TextMap::default();
        let mut model = BTreeMap::new();
        let large = json!("v".repeat(3 * PAGE_BYTES));
        map.insert("m".into(), &large).unwrap();
        model.insert("m".to_string(), large.clone());
        let large_text = |map: &TextMap| {
            let page = map.pages.values().find(|page| page.is_large()).unwrap();
            (page.text.as_ptr(), page.text.capacity())
        };
        let before = large_text(&map);
        // Keys after it, in order and not, and keys before it, down to the least.
        for key in ["n", "z", "p", "l", "a", ""] {
            map.insert(key.into(), &json!(key)).unwrap();
            model.insert(key.to_string(), json!(key));
            check(&map, &model);
            assert_eq!(large_text(&map), before, "after {key:?}");
        }
        // A state read back in order: the large value keeps a page of its own.
        let read_back = read(model.clone());
        check(&read_back, &model);
        assert!(
            read_back
                .pages
                .values()
                .any(|page| page.members.len() == 1 && page.is_large())
        );
        // Emptying the page before it moves its page, not its text.
        let mut map = TextMap::default();
        map.insert("a".into(), &json!(1)).unwrap();
        map.insert("m".into(), &large).unwrap();
        let before = large_text(&map);
        map.remove("a");
        assert_eq!(large_text(&map), before);
        check(&map, &BTreeMap::from([("m".to_string(), large)]));
    }

    #[test]
    fn a_large_value_replaced_by_a_small_one_gives_its_room_back() {
        let mut map = read((0..100).map(|i| (format!("{i:03}"), json!(i))));
        let held =
            |map: &TextMap| -> usize { map.pages.values().map(|page| page.text.capacity()).sum() };
        let small = held(&map);
        for i in 0..10 {
            let key = format!("{i:03}x");
            map.insert(key.clone(), &json!("v".repeat(64 * PAGE_BYTES)))
                .unwrap();
            map.insert(key, &json!(i)).unwrap();
        }
        assert!(
            held(&map) < small + 8 * PAGE_BYTES,
            "{} bytes held",
            held(&map)
        );
    }

    #[test]
    fn a_page_that_deletes_emptied_gives_its_room_back() {
        let mut map = read((0..1_000).map(|i| (format!("{i:04}"), json!(i))));
        for i in 0..1_000 {
            if i % 10 != 0 {
                map.remove(&format!("{i:04}"));
            }
        }
        let used: usize = map.pages.values().map(|page| page.text.len()).sum();
        let held: usize = map.pages.values().map(|page| page.text.capacity()).sum();
        assert!(
            held <= 4 * used.max(PAGE_MERGE_BYTES),
            "{held} bytes for {used}"
        );
        let model: BTreeMap<String, Value> = (0..1_000)
            .step_by(10)
            .map(|i| (format!("{i:04}"), json!(i)))
            .collect();
        check(&map, &model);
    }

    #[test]
    fn maps_are_equal_whatever_their_pages() {
        let pairs: Vec<(String, Value)> = (0..3_000).map(|i| (format!("{i}"), json!(i))).collect();
        let built = read(pairs.clone());
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
