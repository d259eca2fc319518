//! The served [`Dataset`] with the indexes that keep big instances fast: attributes in id
//! order, events in id order and each event's attributes; a generation counter that changes
//! on every write (it invalidates restSearch paging cursors); and the mutations that behave
//! like MISP (edits, additions and soft deletions unpublish the event and bump timestamps).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::dataset::{Attribute, Dataset, Event};
use crate::search::Query;

/// Where a paged id-ordered scan stopped, so that the next page (or a retry of the same page)
/// of the same query does not rescan everything before it.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The query with `page` set to 1.
    pub key: Query,
    pub generation: u64,
    pub page: usize,
    /// Scan index where the page's first hit was searched from.
    pub start: usize,
    /// Scan index just after the page's last hit.
    pub end: usize,
}

/// Paging cursors kept at most.
const MAX_CURSORS: usize = 32;

#[derive(Debug)]
pub(crate) struct Store {
    ds: Dataset,
    /// Positions in `ds.attributes`, sorted by attribute id (stable for duplicate ids).
    by_id: Vec<u32>,
    /// Positions in `ds.events`, sorted by event id, one per id (the last one wins, like the
    /// former per-request map).
    events_by_id: Vec<u32>,
    /// Event id -> positions of its attributes in `ds.attributes`, sorted by attribute id.
    by_event: HashMap<u64, Vec<u32>>,
    generation: u64,
    cursors: Mutex<Vec<Cursor>>,
}

fn pos(i: usize) -> u32 {
    u32::try_from(i).expect("misp-double: more than 4 billion rows")
}

impl Store {
    pub(crate) fn new(ds: Dataset) -> Store {
        let mut s = Store {
            ds,
            by_id: Vec::new(),
            events_by_id: Vec::new(),
            by_event: HashMap::new(),
            generation: 0,
            cursors: Mutex::new(Vec::new()),
        };
        s.rebuild();
        s
    }

    pub(crate) fn dataset(&self) -> &Dataset {
        &self.ds
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Replaces everything.
    pub(crate) fn replace(&mut self, ds: Dataset) {
        self.ds = ds;
        self.rebuild();
    }

    fn rebuild(&mut self) {
        self.generation += 1;
        let attrs = &self.ds.attributes;
        let mut by_id: Vec<u32> = (0..attrs.len()).map(pos).collect();
        // Stable, and linear on already sorted data (the usual case).
        by_id.sort_by_key(|&p| attrs[p as usize].id);
        let mut by_event: HashMap<u64, Vec<u32>> = HashMap::new();
        for &p in &by_id {
            by_event
                .entry(attrs[p as usize].event_id)
                .or_default()
                .push(p);
        }
        let events = &self.ds.events;
        let mut events_by_id: Vec<u32> = (0..events.len()).map(pos).collect();
        events_by_id.sort_by_key(|&p| events[p as usize].id);
        // Keep the last of each run of equal ids.
        let mut unique: Vec<u32> = Vec::with_capacity(events_by_id.len());
        for p in events_by_id {
            match unique.last_mut() {
                Some(last) if events[*last as usize].id == events[p as usize].id => *last = p,
                _ => unique.push(p),
            }
        }
        self.by_id = by_id;
        self.by_event = by_event;
        self.events_by_id = unique;
        self.cursors
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every write goes through here: paging cursors become stale.
    fn touch(&mut self) {
        self.generation += 1;
    }

    // ------------------------------------------------------------------ reads

    /// Attribute positions in id order.
    pub(crate) fn attribute_order(&self) -> &[u32] {
        &self.by_id
    }

    pub(crate) fn attribute_at(&self, p: u32) -> &Attribute {
        &self.ds.attributes[p as usize]
    }

    /// Positions of the attributes of one event, in id order.
    pub(crate) fn event_attribute_positions(&self, event_id: u64) -> &[u32] {
        self.by_event.get(&event_id).map_or(&[], Vec::as_slice)
    }

    /// Events in id order (one per id).
    pub(crate) fn events_in_order(&self) -> impl Iterator<Item = &Event> + '_ {
        self.events_by_id
            .iter()
            .map(move |&p| &self.ds.events[p as usize])
    }

    fn event_slot(&self, id: u64) -> Option<usize> {
        let events = &self.ds.events;
        self.events_by_id
            .binary_search_by_key(&id, |&p| events[p as usize].id)
            .ok()
            .map(|i| self.events_by_id[i] as usize)
    }

    pub(crate) fn event(&self, id: u64) -> Option<&Event> {
        self.event_slot(id).map(|p| &self.ds.events[p])
    }

    fn attribute_slot(&self, id: u64) -> Option<usize> {
        let attrs = &self.ds.attributes;
        // The first of equal ids, like `Dataset::attribute`.
        let i = self.by_id.partition_point(|&p| attrs[p as usize].id < id);
        self.by_id
            .get(i)
            .map(|&p| p as usize)
            .filter(|&p| attrs[p].id == id)
    }

    /// Attributes of the event that are not soft-deleted (MISP's `Event.attribute_count`).
    pub(crate) fn live_attribute_count(&self, event_id: u64) -> usize {
        self.event_attribute_positions(event_id)
            .iter()
            .filter(|&&p| !self.ds.attributes[p as usize].deleted)
            .count()
    }

    /// A saved cursor for this query page (`page` itself or the page before it).
    pub(crate) fn cursor_for(&self, key: &Query, page: usize) -> Option<Cursor> {
        let cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        cursors
            .iter()
            .find(|c| {
                c.generation == self.generation
                    && (c.page == page || c.page + 1 == page)
                    && c.key == *key
            })
            .cloned()
    }

    pub(crate) fn save_cursor(&self, cursor: Cursor) {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        cursors.retain(|c| c.generation == self.generation && c.key != cursor.key);
        if cursors.len() >= MAX_CURSORS {
            cursors.remove(0);
        }
        cursors.push(cursor);
    }

    // ------------------------------------------------------------------ plain writes

    /// Inserts an event, replacing any event with the same id (no other effect).
    pub(crate) fn upsert_event(&mut self, event: Event) {
        self.touch();
        if let Some(p) = self.event_slot(event.id) {
            self.ds.events[p] = event;
            return;
        }
        let id = event.id;
        let p = pos(self.ds.events.len());
        self.ds.events.push(event);
        let events = &self.ds.events;
        let i = self
            .events_by_id
            .partition_point(|&q| events[q as usize].id < id);
        self.events_by_id.insert(i, p);
    }

    /// Inserts an attribute, replacing any attribute with the same id (no other effect).
    pub(crate) fn upsert_attribute(&mut self, attr: Attribute) {
        self.touch();
        if let Some(p) = self.attribute_slot(attr.id) {
            let moved = self.ds.attributes[p].event_id != attr.event_id;
            self.ds.attributes[p] = attr;
            if moved {
                self.rebuild();
            }
            return;
        }
        let (id, event_id) = (attr.id, attr.event_id);
        let p = pos(self.ds.attributes.len());
        self.ds.attributes.push(attr);
        let attrs = &self.ds.attributes;
        let i = self.by_id.partition_point(|&q| attrs[q as usize].id <= id);
        self.by_id.insert(i, p);
        let list = self.by_event.entry(event_id).or_default();
        let j = list.partition_point(|&q| attrs[q as usize].id <= id);
        list.insert(j, p);
    }

    // ------------------------------------------------------------------ MISP-like mutations

    /// MISP's `Event::unpublishEvent`: `published` off, `timestamp` = now.
    fn unpublish_touching(&mut self, event_id: u64, now: u64) {
        if let Some(p) = self.event_slot(event_id) {
            let e = &mut self.ds.events[p];
            e.published = false;
            e.timestamp = now;
        }
    }

    pub(crate) fn edit_attribute(
        &mut self,
        id: u64,
        now: u64,
        edit: impl FnOnce(&mut Attribute),
    ) -> bool {
        let Some(p) = self.attribute_slot(id) else {
            return false;
        };
        self.touch();
        let before = (self.ds.attributes[p].id, self.ds.attributes[p].event_id);
        let a = &mut self.ds.attributes[p];
        edit(a);
        a.timestamp = now;
        let after = (a.id, a.event_id);
        if after != before {
            self.rebuild();
        }
        self.unpublish_touching(before.1, now);
        if after.1 != before.1 {
            self.unpublish_touching(after.1, now);
        }
        true
    }

    /// Returns the id used (a fresh one, above every existing id, when `attr.id` is 0), or
    /// `None` when the event does not exist.
    pub(crate) fn add_attribute_as_user(&mut self, mut attr: Attribute, now: u64) -> Option<u64> {
        self.event_slot(attr.event_id)?;
        if attr.id == 0 {
            attr.id = self
                .by_id
                .last()
                .map_or(0, |&p| self.ds.attributes[p as usize].id)
                + 1;
        }
        attr.timestamp = now;
        let (id, event_id) = (attr.id, attr.event_id);
        self.upsert_attribute(attr);
        self.unpublish_touching(event_id, now);
        Some(id)
    }

    pub(crate) fn soft_delete_attribute(&mut self, id: u64, now: u64) -> bool {
        let Some(p) = self.attribute_slot(id) else {
            return false;
        };
        self.touch();
        let a = &mut self.ds.attributes[p];
        a.deleted = true;
        a.timestamp = now;
        let event_id = a.event_id;
        self.unpublish_touching(event_id, now);
        true
    }

    pub(crate) fn edit_event(&mut self, id: u64, now: u64, edit: impl FnOnce(&mut Event)) -> bool {
        let Some(p) = self.event_slot(id) else {
            return false;
        };
        self.touch();
        let e = &mut self.ds.events[p];
        edit(e);
        e.published = false;
        e.timestamp = now;
        if e.id != id {
            self.rebuild();
        }
        true
    }

    pub(crate) fn publish_event(&mut self, id: u64, now: u64) -> bool {
        let Some(p) = self.event_slot(id) else {
            return false;
        };
        self.touch();
        let e = &mut self.ds.events[p];
        e.published = true;
        e.publish_timestamp = now;
        true
    }

    pub(crate) fn unpublish_event(&mut self, id: u64) -> bool {
        let Some(p) = self.event_slot(id) else {
            return false;
        };
        self.touch();
        self.ds.events[p].published = false;
        true
    }

    pub(crate) fn set_event_protected(&mut self, id: u64, protected: bool, now: u64) -> bool {
        let Some(p) = self.event_slot(id) else {
            return false;
        };
        self.touch();
        let e = &mut self.ds.events[p];
        e.protected = protected;
        e.published = false;
        e.timestamp = now;
        true
    }

    pub(crate) fn delete_event(&mut self, id: u64) -> bool {
        if self.event_slot(id).is_none() {
            return false;
        }
        self.ds.events.retain(|e| e.id != id);
        self.ds.attributes.retain(|a| a.event_id != id);
        self.rebuild();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_upserts() {
        let mut s = Store::new(Dataset::seed());
        assert_eq!(s.event_attribute_positions(1).len(), 10);
        assert_eq!(s.live_attribute_count(4), 1);
        let mut a = Attribute::new(100, 4, "ip-src", "198.51.100.7");
        s.upsert_attribute(a.clone());
        a.id = 50;
        s.upsert_attribute(a);
        let ids: Vec<u64> = s
            .event_attribute_positions(4)
            .iter()
            .map(|&p| s.attribute_at(p).id)
            .collect();
        assert_eq!(ids, vec![1, 15, 50, 100]);
        let all: Vec<u64> = s
            .attribute_order()
            .iter()
            .map(|&p| s.attribute_at(p).id)
            .collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        s.upsert_event(Event::new(0, "zero"));
        assert_eq!(s.events_in_order().next().unwrap().id, 0);
        assert!(s.delete_event(1));
        assert!(s.event(1).is_none());
        assert!(s.event_attribute_positions(1).is_empty());
        assert_eq!(s.attribute_order().len(), 7);
    }
}
