package io.cairn.bench;

import io.cairn.cluster.ZooKeeperFixture;

/**
 * A ZooKeeper server for benchmark scripts (bench/cluster.sh): the same in-process server the cluster
 * tests use, started on its own, printing its connect string and running until its standard input closes.
 */
public final class StandaloneZooKeeper {

    private StandaloneZooKeeper() {
    }

    public static void main(String[] args) throws Exception {
        try (ZooKeeperFixture zk = new ZooKeeperFixture()) {
            System.out.println(zk.connectString());
            System.out.flush();
            while (System.in.read() >= 0) {
                // runs until the script closes our input
            }
        }
    }
}
