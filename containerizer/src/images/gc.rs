//! Image garbage collection: which image records and layers may go.
//!
//! The selection is pure (over a [`StoreView`]) so the rules are unit
//! tested without a registry; [`super::ImageStore::prune`] builds the view
//! from disk and deletes what the selection names.
//!
//! Rules:
//! - an image is kept when its reference is excluded, when a provisioned
//!   rootfs uses it (its manifest digest is in use), or - for the size
//!   based GC - while the store fits its budget (least recently used
//!   images go first);
//! - a layer is kept when a kept image lists it or a provisioned rootfs
//!   mounts it; every other layer (also orphans without an image record)
//!   goes.

use std::collections::{BTreeSet, HashSet};
use std::time::SystemTime;

/// One image record as GC sees it.
#[derive(Debug, Clone)]
pub(crate) struct ImageEntry {
    pub reference: String,
    pub manifest_digest: String,
    pub layer_digests: Vec<String>,
    /// The record's mtime: written by every pull that resolved to it.
    pub last_used: SystemTime,
}

/// The store's image records and layers (digest, unpacked bytes).
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreView {
    pub images: Vec<ImageEntry>,
    pub layers: Vec<(String, u64)>,
}

/// What is in use by provisioned rootfses (running containers).
#[derive(Debug, Clone, Default)]
pub(crate) struct InUse {
    pub manifests: HashSet<String>,
    pub layers: HashSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Manifest digests of the image records to remove.
    pub images: Vec<String>,
    /// Layer digests to remove.
    pub layers: Vec<String>,
}

/// `excluded` matches an image's reference as written or canonical (a
/// `busybox` exclusion keeps `docker.io/library/busybox:latest`).
fn is_excluded(image: &ImageEntry, excluded: &HashSet<String>) -> bool {
    excluded.contains(&image.reference) || excluded.contains(&canonical(&image.reference))
}

/// `docker.io/library/busybox:latest` for `busybox`; references that do not
/// parse stay as written.
pub(crate) fn canonical(reference: &str) -> String {
    use tepui_fetcher::registry::{DOCKER_HUB, Reference};
    let Ok(r) = Reference::parse(reference) else {
        return reference.to_string();
    };
    let hub = matches!(
        r.registry.as_deref(),
        None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io")
    );
    let registry = if hub {
        DOCKER_HUB.to_string()
    } else {
        r.registry.clone().unwrap_or_default()
    };
    let repository = if hub && !r.repository.contains('/') {
        format!("library/{}", r.repository)
    } else {
        r.repository.clone()
    };
    let mut out = format!("{registry}/{repository}");
    match (&r.tag, &r.digest) {
        (Some(t), _) => out.push_str(&format!(":{t}")),
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = &r.digest {
        out.push_str(&format!("@{d}"));
    }
    out
}

fn pinned(image: &ImageEntry, excluded: &HashSet<String>, in_use: &InUse) -> bool {
    is_excluded(image, excluded)
        || in_use.manifests.contains(&image.manifest_digest)
        // A rootfs provisioned before records named its manifest still
        // names its layers: an image all of whose layers are mounted stays.
        || (!image.layer_digests.is_empty()
            && image.layer_digests.iter().all(|l| in_use.layers.contains(l)))
}

/// Layers no kept image lists and no rootfs mounts.
fn unreferenced_layers(view: &StoreView, kept: &[&ImageEntry], in_use: &InUse) -> Vec<String> {
    let referenced: HashSet<&str> = kept
        .iter()
        .flat_map(|i| i.layer_digests.iter().map(String::as_str))
        .collect();
    view.layers
        .iter()
        .filter(|(d, _)| !referenced.contains(d.as_str()) && !in_use.layers.contains(d))
        .map(|(d, _)| d.clone())
        .collect()
}

/// PRUNE_IMAGES: everything not excluded and not in use.
pub(crate) fn select_prune(view: &StoreView, excluded: &[String], in_use: &InUse) -> Selection {
    let excluded: HashSet<String> = excluded
        .iter()
        .flat_map(|r| [r.clone(), canonical(r)])
        .collect();
    let (kept, removed): (Vec<&ImageEntry>, Vec<&ImageEntry>) = view
        .images
        .iter()
        .partition(|i| pinned(i, &excluded, in_use));
    Selection {
        images: dedup(removed.iter().map(|i| i.manifest_digest.clone())),
        layers: unreferenced_layers(view, &kept, in_use),
    }
}

/// Size GC: drops least recently used images (never `keep`s or in-use
/// ones) until the layers left fit in `max_bytes`. Orphan layers always go.
pub(crate) fn select_size(
    view: &StoreView,
    max_bytes: u64,
    keep: &[String],
    in_use: &InUse,
) -> Selection {
    let keep: HashSet<String> = keep
        .iter()
        .flat_map(|r| [r.clone(), canonical(r)])
        .collect();
    let size = |layers: &[String]| -> u64 {
        let gone: HashSet<&str> = layers.iter().map(String::as_str).collect();
        view.layers
            .iter()
            .filter(|(d, _)| !gone.contains(d.as_str()))
            .map(|(_, b)| *b)
            .sum()
    };
    let mut candidates: Vec<&ImageEntry> = view
        .images
        .iter()
        .filter(|i| !pinned(i, &keep, in_use))
        .collect();
    candidates.sort_by_key(|i| i.last_used);
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let kept_now = |removed: &BTreeSet<String>| -> Vec<&ImageEntry> {
        view.images
            .iter()
            .filter(|i| !removed.contains(&i.manifest_digest))
            .collect()
    };
    let mut layers = unreferenced_layers(view, &kept_now(&removed), in_use);
    for candidate in candidates {
        if size(&layers) <= max_bytes {
            break;
        }
        removed.insert(candidate.manifest_digest.clone());
        layers = unreferenced_layers(view, &kept_now(&removed), in_use);
    }
    Selection {
        images: removed.into_iter().collect(),
        layers,
    }
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    items.collect::<BTreeSet<_>>().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn image(reference: &str, manifest: &str, layers: &[&str], age: u64) -> ImageEntry {
        ImageEntry {
            reference: reference.to_string(),
            manifest_digest: manifest.to_string(),
            layer_digests: layers.iter().map(|s| s.to_string()).collect(),
            last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(1000 - age),
        }
    }

    fn view() -> StoreView {
        StoreView {
            images: vec![
                image("busybox", "m1", &["a", "b"], 10),
                image("registry.local/app:1", "m2", &["b", "c"], 5),
                image("registry.local/old:1", "m3", &["d"], 50),
            ],
            layers: vec![
                ("a".into(), 100),
                ("b".into(), 200),
                ("c".into(), 300),
                ("d".into(), 400),
                ("orphan".into(), 1),
            ],
        }
    }

    #[test]
    fn prune_removes_everything_unused() {
        let s = select_prune(&view(), &[], &InUse::default());
        assert_eq!(s.images, vec!["m1", "m2", "m3"]);
        assert_eq!(s.layers, vec!["a", "b", "c", "d", "orphan"]);
    }

    #[test]
    fn prune_keeps_excluded_images_by_canonical_reference() {
        let s = select_prune(
            &view(),
            &["docker.io/library/busybox:latest".to_string()],
            &InUse::default(),
        );
        assert_eq!(s.images, vec!["m2", "m3"]);
        // b is shared with the kept busybox.
        assert_eq!(s.layers, vec!["c", "d", "orphan"]);
    }

    #[test]
    fn prune_never_removes_layers_of_running_containers() {
        let in_use = InUse {
            manifests: ["m2".to_string()].into(),
            layers: ["b".to_string(), "c".to_string(), "d".to_string()].into(),
        };
        let s = select_prune(&view(), &[], &in_use);
        assert_eq!(s.images, vec!["m1"]);
        // d is mounted even though its image record goes... unless all
        // of an image's layers are mounted: then the image stays too.
        assert_eq!(s.layers, vec!["a", "orphan"]);
    }

    #[test]
    fn size_gc_drops_least_recently_used_first() {
        // Total 1001; the budget 600 needs m3 (d: 400) gone, then orphan.
        let s = select_size(&view(), 600, &[], &InUse::default());
        assert_eq!(s.images, vec!["m3"]);
        assert_eq!(s.layers, vec!["d", "orphan"]);
        // 250 needs m1 next (a: 100, b stays for m2) and then m2.
        let s = select_size(&view(), 250, &[], &InUse::default());
        assert_eq!(s.images, vec!["m1", "m2", "m3"]);
        let s = select_size(&view(), 2000, &[], &InUse::default());
        assert!(s.images.is_empty());
        assert_eq!(s.layers, vec!["orphan"]);
    }

    #[test]
    fn size_gc_keeps_the_image_just_pulled_and_in_use_ones() {
        let in_use = InUse {
            manifests: ["m3".to_string()].into(),
            layers: ["d".to_string()].into(),
        };
        let s = select_size(&view(), 0, &["busybox".to_string()], &in_use);
        assert_eq!(s.images, vec!["m2"]);
        assert_eq!(s.layers, vec!["c", "orphan"]);
    }
}
