//! The Mesos resource model.
