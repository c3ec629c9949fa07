//! Against a real ZooKeeper server: contention, detection, versioned writes.
#![cfg(feature = "zk")]

use std::time::Duration;

use tepui_proto::v1::MasterInfo;
use tepui_proto::zk::testing::ZkServer;
use tepui_proto::zk::{Contender, VersionedNode, ZkError, ZkUrl};

const SESSION: Duration = Duration::from_secs(2);

fn info(port: u32) -> MasterInfo {
    MasterInfo {
        id: format!("m{port}"),
        ip: u32::from_le_bytes([127, 0, 0, 1]),
        port,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowest_contender_leads_and_detector_follows() {
    let server = ZkServer::start().expect("zookeeper");
    let url = ZkUrl::parse(&server.url("/tepui/masters")).expect("url");
    let a = url.connect(SESSION).await.expect("connect a");
    let b = url.connect(SESSION).await.expect("connect b");
    let ca = Contender::join(&a, &url.path, &info(1))
        .await
        .expect("join a");
    let cb = Contender::join(&b, &url.path, &info(2))
        .await
        .expect("join b");
    assert!(tepui_proto::zk::sequence_of(&ca.child) < tepui_proto::zk::sequence_of(&cb.child));

    let mut leader = tepui_proto::zk::detect(url.clone(), SESSION);
    let first = leader
        .wait_for(|l| l.is_some())
        .await
        .expect("detector")
        .clone()
        .expect("leader");
    assert_eq!(first.child, ca.child);
    assert_eq!(first.endpoint(), "127.0.0.1:1");

    // The leader's session ends: the next contender leads.
    drop(a);
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        leader.wait_for(|l| l.as_ref().is_some_and(|l| l.child == cb.child)),
    )
    .await
    .expect("new leader within 10s")
    .expect("detector")
    .clone()
    .expect("leader");
    assert_eq!(next.info.id, "m2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_writer_is_refused() {
    let server = ZkServer::start().expect("zookeeper");
    let url = ZkUrl::parse(&server.url("/tepui")).expect("url");
    let old = url.connect(SESSION).await.expect("connect");
    let new = url.connect(SESSION).await.expect("connect");
    let (mut deposed, data) = VersionedNode::open(old, "/tepui/registry")
        .await
        .expect("open");
    assert!(data.is_empty());
    deposed.write(b"one").await.expect("first write");
    let (mut successor, data) = VersionedNode::open(new, "/tepui/registry")
        .await
        .expect("open");
    assert_eq!(data, b"one");
    successor.write(b"two").await.expect("successor writes");
    match deposed.write(b"stale").await {
        Err(ZkError::Conflict { .. }) => {}
        other => panic!("stale write must conflict, got {other:?}"),
    }
    successor
        .write(b"three")
        .await
        .expect("successor writes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_larger_than_a_znode_round_trips_and_refused_writes_leave_nothing() {
    let server = ZkServer::start().expect("zookeeper");
    let url = ZkUrl::parse(&server.url("/big")).expect("url");
    let client = url.connect(SESSION).await.expect("connect");
    let (mut writer, _) = VersionedNode::open(client.clone(), "/big/registry")
        .await
        .expect("open");
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    writer.write(&data).await.expect("3 MiB write");
    writer.write(&data[..100]).await.expect("small write");
    writer.write(&data).await.expect("3 MiB again");
    let (mut successor, read) = VersionedNode::open(client.clone(), "/big/registry")
        .await
        .expect("reopen");
    assert_eq!(read, data);
    assert!(matches!(
        writer.write(b"stale").await,
        Err(ZkError::Conflict { .. })
    ));
    successor.write(b"new").await.expect("successor writes");
    // One generation left: the refused and the replaced ones are deleted.
    let generations = client
        .list_children("/big/registry.data")
        .await
        .expect("list");
    assert_eq!(generations.len(), 1, "{generations:?}");
    let (_, read) = VersionedNode::open(client, "/big/registry")
        .await
        .expect("reopen");
    assert_eq!(read, b"new");
}
