//! Reservation stacks (`Resource.reservations`) and the legacy single-role
//! format they replaced.
//!
//! Since reservation refinement, a resource carries a stack of reservations:
//! `[(STATIC, eng), (DYNAMIC, eng/backend)]` was reserved to `eng` by the
//! agent and then refined to `eng/backend` by an operator. Each refinement
//! must be DYNAMIC and to a strict sub-role of the one below it; the top of
//! the stack (the last element) is the role the resource is reserved to.
//!
//! Older clients still send the "pre-reservation-refinement" format (a `role`
//! field defaulting to `*` and an optional `reservation` without a role), and
//! Mesos's endpoints echo it next to `reservations`. Both are accepted on
//! input and converted once, by [`to_post_refinement`]; everything inside a
//! `Resources` is in the post-refinement format with the legacy fields unset.

use super::error::ValidationError;
use super::role;
use crate::v1::resource::ReservationInfo;
use crate::v1::resource::reservation_info::Type as ReservationType;
use crate::v1::{Label, Labels, Resource};

/// A STATIC reservation to `role`, as the agent's `--resources` flag makes.
pub fn static_reservation(role: &str) -> ReservationInfo {
    ReservationInfo {
        r#type: Some(ReservationType::Static as i32),
        role: Some(role.to_string()),
        principal: None,
        labels: None,
    }
}

/// A DYNAMIC reservation to `role`, as a RESERVE operation makes.
pub fn dynamic_reservation(role: &str, principal: Option<&str>) -> ReservationInfo {
    ReservationInfo {
        r#type: Some(ReservationType::Dynamic as i32),
        role: Some(role.to_string()),
        principal: principal.map(str::to_string),
        labels: None,
    }
}

/// The role `resource` is reserved to: the top of its reservation stack.
pub(crate) fn reservation_role(resource: &Resource) -> Option<&str> {
    resource.reservations.last().map(|r| r.role())
}

/// Mesos's `ReservationInfo` equality: type, role, principal and labels (in
/// any order). Unset type and role compare as their defaults, as in C++.
pub fn reservation_eq(a: &ReservationInfo, b: &ReservationInfo) -> bool {
    a.r#type() == b.r#type()
        && a.role() == b.role()
        && a.principal == b.principal
        && labels_eq(a.labels.as_ref(), b.labels.as_ref())
}

/// Mesos's `Labels` equality: presence must match, and then the labels are
/// compared as a multiset, an unset value being equal to an empty one.
pub(crate) fn labels_eq(a: Option<&Labels>, b: Option<&Labels>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let key = |l: &Label| (l.key.clone(), l.value.clone().unwrap_or_default());
            let mut left: Vec<_> = a.labels.iter().map(key).collect();
            let mut right: Vec<_> = b.labels.iter().map(key).collect();
            left.sort_unstable();
            right.sort_unstable();
            left == right
        }
        _ => false,
    }
}

/// Converts `resource` from the legacy format (`role`, `reservation`) to the
/// post-refinement format (`reservations` only), as Mesos's
/// `convertResourceFormat(POST_RESERVATION_REFINEMENT)` does. A resource that
/// already has `reservations` only loses its legacy echo. Never panics; run
/// [`super::validate`] first to learn whether the legacy fields were coherent.
#[allow(deprecated)] // `role` is the legacy field this function exists to retire.
pub fn to_post_refinement(resource: &mut Resource) {
    let legacy_reservation = resource.reservation.take();
    let legacy_role = resource.role.take();
    if !resource.reservations.is_empty() {
        return;
    }
    let role = legacy_role.unwrap_or_else(|| role::STAR.to_string());
    if role == role::STAR {
        return;
    }
    let mut reservation = match legacy_reservation {
        // A legacy `reservation` is what marked a reservation as dynamic.
        Some(mut reservation) => {
            reservation.r#type = Some(ReservationType::Dynamic as i32);
            reservation
        }
        None => static_reservation(&role),
    };
    reservation.role = Some(role);
    resource.reservations.push(reservation);
}

/// Validates the reservation fields of `resource`, in either format, with
/// Mesos's rules.
#[allow(deprecated)] // The legacy `role` field must still be validated.
pub(crate) fn validate(resource: &Resource) -> Result<(), ValidationError> {
    if resource.reservations.is_empty() {
        return validate_legacy(resource);
    }

    for (index, reservation) in resource.reservations.iter().enumerate() {
        let Some(ty) = reservation.r#type else {
            return Err(ValidationError::ReservationTypeMissing { index });
        };
        if !matches!(
            ReservationType::try_from(ty),
            Ok(ReservationType::Static | ReservationType::Dynamic)
        ) {
            return Err(ValidationError::ReservationTypeUnknown { index });
        }
        let Some(role) = reservation.role.as_deref() else {
            return Err(ValidationError::ReservationRoleMissing { index });
        };
        role::validate(role).map_err(|source| ValidationError::InvalidRole {
            field: format!("reservations[{index}].role"),
            source,
        })?;
        if role == role::STAR {
            return Err(ValidationError::StarReserved { index });
        }
    }

    for (index, pair) in resource.reservations.windows(2).enumerate() {
        let (ancestor, refined) = (&pair[0], &pair[1]);
        let index = index + 1;
        if refined.r#type() == ReservationType::Static {
            return Err(ValidationError::StaticRefinement { index });
        }
        if !role::is_strict_subrole_of(refined.role(), ancestor.role()) {
            return Err(ValidationError::NotARefinement {
                index,
                role: refined.role().to_string(),
                ancestor: ancestor.role().to_string(),
            });
        }
    }

    // The legacy fields may echo a single reservation (Mesos's "endpoint"
    // format), but only coherently.
    match resource.reservations.as_slice() {
        [single] => validate_legacy_echo(resource, single),
        _ => {
            if resource.role.is_some() {
                return Err(ValidationError::LegacyFieldWithRefinement { field: "role" });
            }
            if resource.reservation.is_some() {
                return Err(ValidationError::LegacyFieldWithRefinement {
                    field: "reservation",
                });
            }
            Ok(())
        }
    }
}

#[allow(deprecated)]
fn validate_legacy(resource: &Resource) -> Result<(), ValidationError> {
    let role = resource.role();
    role::validate(role).map_err(|source| ValidationError::InvalidRole {
        field: "role".to_string(),
        source,
    })?;
    if let Some(reservation) = &resource.reservation {
        if reservation.r#type.is_some() {
            return Err(ValidationError::LegacyReservationField { field: "type" });
        }
        if reservation.role.is_some() {
            return Err(ValidationError::LegacyReservationField { field: "role" });
        }
        if role == role::STAR {
            return Err(ValidationError::StarDynamicallyReserved);
        }
    }
    Ok(())
}

#[allow(deprecated)]
fn validate_legacy_echo(
    resource: &Resource,
    reservation: &ReservationInfo,
) -> Result<(), ValidationError> {
    if let Some(role) = &resource.role
        && role != reservation.role()
    {
        return Err(ValidationError::LegacyRoleMismatch {
            role: role.clone(),
            reserved: reservation.role().to_string(),
        });
    }
    match reservation.r#type() {
        ReservationType::Static if resource.reservation.is_some() => {
            Err(ValidationError::LegacyReservationOnStatic)
        }
        ReservationType::Dynamic => {
            if resource.role.is_some() != resource.reservation.is_some() {
                return Err(ValidationError::LegacyFieldsInconsistent);
            }
            if let Some(legacy) = &resource.reservation {
                if legacy.principal() != reservation.principal() {
                    return Err(ValidationError::LegacyReservationMismatch { field: "principal" });
                }
                let empty = Labels::default();
                if !labels_eq(
                    Some(legacy.labels.as_ref().unwrap_or(&empty)),
                    Some(reservation.labels.as_ref().unwrap_or(&empty)),
                ) {
                    return Err(ValidationError::LegacyReservationMismatch { field: "labels" });
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;
    use crate::v1::value::{Scalar, Type};

    fn cpus() -> Resource {
        Resource {
            name: "cpus".into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value: 1.0 }),
            ..Default::default()
        }
    }

    fn with_stack(stack: Vec<ReservationInfo>) -> Resource {
        Resource {
            reservations: stack,
            ..cpus()
        }
    }

    fn label(key: &str, value: Option<&str>) -> Label {
        Label {
            key: key.into(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn role_is_the_top_of_the_stack() {
        let r = with_stack(vec![
            static_reservation("eng"),
            dynamic_reservation("eng/backend", Some("ops")),
        ]);
        assert_eq!(reservation_role(&r), Some("eng/backend"));
        assert_eq!(reservation_role(&cpus()), None);
    }

    #[test]
    fn valid_stacks() {
        assert_eq!(validate(&cpus()), Ok(()));
        assert_eq!(validate(&with_stack(vec![static_reservation("a")])), Ok(()));
        assert_eq!(
            validate(&with_stack(vec![
                static_reservation("a"),
                dynamic_reservation("a/b", None),
                dynamic_reservation("a/b/c", Some("p")),
            ])),
            Ok(())
        );
    }

    #[test]
    fn invalid_stacks() {
        let mut untyped = static_reservation("a");
        untyped.r#type = None;
        let mut unknown = static_reservation("a");
        unknown.r#type = Some(0);
        let mut roleless = static_reservation("a");
        roleless.role = None;
        let cases = vec![
            (
                vec![untyped],
                ValidationError::ReservationTypeMissing { index: 0 },
            ),
            (
                vec![unknown],
                ValidationError::ReservationTypeUnknown { index: 0 },
            ),
            (
                vec![roleless],
                ValidationError::ReservationRoleMissing { index: 0 },
            ),
            (
                vec![static_reservation("*")],
                ValidationError::StarReserved { index: 0 },
            ),
            (
                vec![static_reservation("a"), static_reservation("a/b")],
                ValidationError::StaticRefinement { index: 1 },
            ),
            (
                vec![static_reservation("a"), dynamic_reservation("b", None)],
                ValidationError::NotARefinement {
                    index: 1,
                    role: "b".into(),
                    ancestor: "a".into(),
                },
            ),
            (
                vec![static_reservation("a"), dynamic_reservation("a", None)],
                ValidationError::NotARefinement {
                    index: 1,
                    role: "a".into(),
                    ancestor: "a".into(),
                },
            ),
        ];
        for (stack, expected) in cases {
            assert_eq!(
                validate(&with_stack(stack.clone())),
                Err(expected),
                "{stack:?}"
            );
        }
        assert!(matches!(
            validate(&with_stack(vec![static_reservation("a/")])),
            Err(ValidationError::InvalidRole { field, .. }) if field == "reservations[0].role"
        ));
    }

    #[test]
    fn legacy_format_rules() {
        let legacy = |role: Option<&str>, reservation: Option<ReservationInfo>| Resource {
            role: role.map(str::to_string),
            reservation,
            ..cpus()
        };
        let bare = ReservationInfo::default();
        assert_eq!(validate(&legacy(Some("a"), None)), Ok(()));
        assert_eq!(validate(&legacy(Some("a"), Some(bare.clone()))), Ok(()));
        assert_eq!(
            validate(&legacy(Some("*"), Some(bare.clone()))),
            Err(ValidationError::StarDynamicallyReserved)
        );
        assert_eq!(
            validate(&legacy(None, Some(bare.clone()))),
            Err(ValidationError::StarDynamicallyReserved),
            "role defaults to '*'"
        );
        assert_eq!(
            validate(&legacy(Some("a"), Some(static_reservation("a")))),
            Err(ValidationError::LegacyReservationField { field: "type" })
        );
        assert!(matches!(
            validate(&legacy(Some("-a"), None)),
            Err(ValidationError::InvalidRole { field, .. }) if field == "role"
        ));
    }

    #[test]
    fn endpoint_format_echo_must_match() {
        let echo = |role: Option<&str>, legacy: Option<ReservationInfo>, r: ReservationInfo| {
            validate(&Resource {
                role: role.map(str::to_string),
                reservation: legacy,
                ..with_stack(vec![r])
            })
        };
        let principal = |p: &str| ReservationInfo {
            principal: Some(p.into()),
            ..Default::default()
        };
        let dynamic = dynamic_reservation("a", Some("p"));
        assert_eq!(
            echo(Some("a"), Some(principal("p")), dynamic.clone()),
            Ok(())
        );
        assert_eq!(echo(Some("a"), None, static_reservation("a")), Ok(()));
        assert_eq!(
            echo(Some("b"), None, static_reservation("a")),
            Err(ValidationError::LegacyRoleMismatch {
                role: "b".into(),
                reserved: "a".into()
            })
        );
        assert_eq!(
            echo(None, Some(principal("p")), static_reservation("a")),
            Err(ValidationError::LegacyReservationOnStatic)
        );
        assert_eq!(
            echo(Some("a"), None, dynamic.clone()),
            Err(ValidationError::LegacyFieldsInconsistent)
        );
        assert_eq!(
            echo(Some("a"), Some(principal("q")), dynamic.clone()),
            Err(ValidationError::LegacyReservationMismatch { field: "principal" })
        );
        let labelled = ReservationInfo {
            labels: Some(Labels {
                labels: vec![label("k", None)],
            }),
            ..principal("p")
        };
        assert_eq!(
            echo(Some("a"), Some(labelled), dynamic),
            Err(ValidationError::LegacyReservationMismatch { field: "labels" })
        );
        let refined = Resource {
            role: Some("a/b".into()),
            ..with_stack(vec![
                static_reservation("a"),
                dynamic_reservation("a/b", None),
            ])
        };
        assert_eq!(
            validate(&refined),
            Err(ValidationError::LegacyFieldWithRefinement { field: "role" })
        );
    }

    #[test]
    fn converts_legacy_to_post_refinement() {
        let mut unreserved = Resource {
            role: Some("*".into()),
            ..cpus()
        };
        to_post_refinement(&mut unreserved);
        assert_eq!(unreserved, cpus());

        let mut implicit_star = cpus();
        to_post_refinement(&mut implicit_star);
        assert_eq!(implicit_star, cpus());

        let mut fixed = Resource {
            role: Some("a".into()),
            ..cpus()
        };
        to_post_refinement(&mut fixed);
        assert_eq!(fixed, with_stack(vec![static_reservation("a")]));

        let mut dynamic = Resource {
            role: Some("a".into()),
            reservation: Some(ReservationInfo {
                principal: Some("ops".into()),
                ..Default::default()
            }),
            ..cpus()
        };
        to_post_refinement(&mut dynamic);
        assert_eq!(
            dynamic,
            with_stack(vec![dynamic_reservation("a", Some("ops"))])
        );

        let mut echoed = Resource {
            role: Some("a".into()),
            ..with_stack(vec![static_reservation("a")])
        };
        to_post_refinement(&mut echoed);
        assert_eq!(echoed, with_stack(vec![static_reservation("a")]));
    }

    #[test]
    fn equality_ignores_label_order_and_unset_label_values() {
        let labelled = |labels: Vec<Label>| ReservationInfo {
            labels: Some(Labels { labels }),
            ..dynamic_reservation("a", Some("p"))
        };
        assert!(reservation_eq(
            &labelled(vec![label("x", Some("1")), label("y", None)]),
            &labelled(vec![label("y", Some("")), label("x", Some("1"))]),
        ));
        assert!(!reservation_eq(
            &labelled(vec![label("x", Some("1"))]),
            &labelled(vec![label("x", Some("2"))]),
        ));
        assert!(!reservation_eq(
            &labelled(vec![]),
            &dynamic_reservation("a", Some("p"))
        ));
        assert!(!reservation_eq(
            &static_reservation("a"),
            &dynamic_reservation("a", None)
        ));
        assert!(!reservation_eq(
            &dynamic_reservation("a", None),
            &dynamic_reservation("a", Some("p"))
        ));
    }
}
