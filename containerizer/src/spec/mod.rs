//! OCI runtime specs from Mesos container descriptions.
