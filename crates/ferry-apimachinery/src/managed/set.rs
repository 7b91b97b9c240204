//! A set of field paths ([`FieldSet`]), what one manager owns, stored as a
//! tree: at each node the elements that are members (owned themselves) and
//! the children that lead to deeper members. A node can be both (an
//! associative-list item owned as a whole and field by field), which
//! `fieldsV1` writes as `".": {}` among the children.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::PathElement;

/// A set of paths from the root of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Elements owned at this level.
    pub(crate) members: BTreeSet<PathElement>,
    /// Elements with owned paths below them; never empty sets.
    pub(crate) children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (non-empty).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` itself is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether `element` is a member at this level.
    pub fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The subtree below `element`, if any path goes through it.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// The subtree below `element`, created empty if missing (callers must
    /// not leave it empty; see [`FieldSet::drop_empty_child`]).
    pub(crate) fn child_mut(&mut self, element: &PathElement) -> &mut FieldSet {
        self.children.entry(element.clone()).or_default()
    }

    /// Removes the child `element` again when nothing was put under it.
    pub(crate) fn drop_empty_child(&mut self, element: &PathElement) {
        if self.children.get(element).is_some_and(FieldSet::is_empty) {
            self.children.remove(element);
        }
    }

    /// Every path in both sets.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            match self.children.get_mut(element) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(element.clone(), child.clone());
                }
            }
        }
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(element, mine)| {
                let theirs = other.children.get(element)?;
                let both = mine.intersection(theirs);
                (!both.is_empty()).then(|| (element.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// The paths of `self` that are not in `other` (a member of `other`
    /// removes only that member, not the paths below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(element, mine)| match other.children.get(element) {
                None => Some((element.clone(), mine.clone())),
                Some(theirs) => {
                    let rest = mine.difference(theirs);
                    (!rest.is_empty()).then(|| (element.clone(), rest))
                }
            })
            .collect();
        FieldSet { members, children }
    }

    /// Every path, in order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        // Members and children interleaved in element order, as
        // structured-merge-diff iterates them.
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for element in elements {
            prefix.push(element.clone());
            if self.members.contains(element) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(element) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The set as `fieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_object(false))
    }

    fn fields_v1_object(&self, is_member: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if is_member {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for element in elements {
            let member = self.members.contains(element);
            let value = match self.children.get(element) {
                Some(child) => child.fields_v1_object(member),
                None => Map::new(),
            };
            out.insert(element.to_fields_v1_key(), Value::Object(value));
        }
        out
    }

    /// Reads `fieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = value else {
            return Err(format!("fieldsV1 must be an object, got {value}"));
        };
        Ok(Self::read_node(map)?.0)
    }

    /// A node's children and whether the node is itself a member (it has
    /// `"."`, or nothing at all below it).
    fn read_node(map: &Map<String, Value>) -> Result<(FieldSet, bool), String> {
        let mut set = FieldSet::default();
        let mut is_member = false;
        for (key, value) in map {
            if key == "." {
                is_member = true;
                continue;
            }
            let Some(element) = PathElement::from_fields_v1_key(key)? else {
                continue;
            };
            let Value::Object(below) = value else {
                return Err(format!(
                    "fieldsV1 {key:?} must map to an object, got {value}"
                ));
            };
            let (child, member) = Self::read_node(below)?;
            if member {
                set.members.insert(element.clone());
            }
            if !child.is_empty() {
                set.children.insert(element, child);
            }
        }
        if set.is_empty() {
            is_member = true;
        }
        Ok((set, is_member))
    }
}
