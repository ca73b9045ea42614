package io.cairn.cli;

import io.cairn.format.Layout;
import io.cairn.nbd.MetaContexts;
import io.cairn.nbd.NbdServer;
import io.cairn.nbd.store.ChangedSinceContexts;
import io.cairn.nbd.store.StoreExportCatalog;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.VdiInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The main job: serves a store's disks and snapshots over NBD until stopped. SIGINT/SIGTERM stop it
 * in order: NBD connections finish their requests, the admin socket goes, the store is committed and
 * unlocked, and the process exits 0 (5 if the last commit failed). With no STORE it uses {@code ./cairn-data/store.cairn}, creating it on first
 * run with one 10 GiB disk. While it runs, every other command given the same STORE is carried out
 * by this process through its admin socket.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the store's disks over NBD (export NAME = disk, NAME@SNAP = read-only snapshot).")
final class ServeCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    static final Path DEFAULT_STORE = Path.of("cairn-data", "store.cairn");
    static final long DEFAULT_STORE_BYTES = 64L << 30;
    static final String DEFAULT_DISK = "disk0";
    static final long DEFAULT_DISK_BYTES = 10L << 30;
    /** How long a stop by signal waits for connections to finish and the store to close. */
    static final long STOP_TIMEOUT_SECONDS = 60;

    @Parameters(index = "0", arity = "0..1", paramLabel = "STORE",
            description = "The blockstore (default: ./cairn-data/store.cairn, created with a 10 GiB disk 'disk0' if missing).")
    Path store;

    @Option(names = "--listen", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:10809",
            description = "TCP address to serve NBD on (default: ${DEFAULT-VALUE}); 'none' for no TCP.")
    String listen;

    @Option(names = "--socket", paramLabel = "PATH", description = "Also serve NBD on this Unix socket.")
    Path unixSocket;

    @Option(names = "--inetd", description = "Serve one NBD connection on stdin/stdout, then exit (for inetd, systemd sockets, nbdinfo [ CMD ]).")
    boolean inetd;

    @Option(names = "--cache", paramLabel = "SIZE", defaultValue = "64M",
            description = "Memory for cached radix nodes (default: ${DEFAULT-VALUE}; 64M covers a 32 GiB working set).")
    String cache;

    @Option(names = "--export", paramLabel = "NAME", description = "Export a client gets when it asks for no name (default: the first disk).")
    String defaultExport;

    @Option(names = "--write-through", paramLabel = "NAME", arity = "0..*", fallbackValue = "*",
            description = "Make every write durable before acknowledging it (as if it carried FUA), for the named"
                    + " exports or, without names, for all of them: for clients that never send FLUSH.")
    List<String> writeThrough = List.of();

    @Option(names = "--snapshot-every", paramLabel = "INTERVAL[:NAME]",
            description = "Snapshot disk NAME (default: the default export) every INTERVAL, e.g. 10ms or 5m; repeat for"
                    + " more disks. Change it while serving with: cairn schedule STORE NAME --every INTERVAL.")
    List<String> snapshotEvery = List.of();

    @Option(names = "--keep-snapshots", paramLabel = "N", defaultValue = "" + ScheduleCommand.DEFAULT_KEEP,
            description = "How many of its snapshots each --snapshot-every schedule keeps (default: ${DEFAULT-VALUE}).")
    int keepSnapshots;

    @Option(names = "--cluster", paramLabel = "ZK_CONNECT",
            description = "Serve the store together with other node processes, coordinated by this ZooKeeper"
                    + " ensemble (HOST:PORT[,HOST:PORT...]); needs --node.")
    String cluster;

    @Option(names = "--node", paramLabel = "NAME", description = "This node's name in the cluster (unique among live nodes).")
    String node;

    @Option(names = "--lease", paramLabel = "DURATION", defaultValue = "10s",
            description = "Lease timeout of a cluster node: a dead node's disks are taken over this long after it"
                    + " stopped answering (default: ${DEFAULT-VALUE}).")
    String lease;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Path path = store != null ? store : DEFAULT_STORE;
        if ((cluster == null) != (node == null)) {
            throw CommandFailure.usage("--cluster and --node go together: name the ZooKeeper ensemble and this node");
        }
        // A server keeps snapshot sketches up to date in the background, so reports find them stored.
        StoreOptions options = StoreOptions.defaults().withNodeCacheBytes(Sizes.parseBytes(cache)).withSketchWorker(true);
        ClusterServing clustered = null;
        Store opened;
        if (cluster != null) {
            if (inetd) {
                throw CommandFailure.usage("--inetd serves one connection; a cluster node serves many (drop --inetd)");
            }
            clustered = ClusterServing.open(path, options, cluster, node, Durations.parse(lease), listen);
            opened = clustered.store();
        } else {
            opened = store == null && !Files.exists(path) ? createDefault(path, options) : Store.openFile(path, options);
        }
        PrintWriter out = spec.commandLine().getOut();
        String fallback = defaultExport != null ? defaultExport
                : opened.listVdis(false).stream().map(VdiInfo::name).findFirst().orElse(null);
        CountDownLatch stopRequested = new CountDownLatch(1);
        CountDownLatch stopped = new CountDownLatch(1);
        boolean[] clean = {false};
        java.util.function.Predicate<String> durableWrites = name -> writeThrough.contains("*") || writeThrough.contains(name);
        MetaContexts contexts = MetaContexts.standard().with(new ChangedSinceContexts(opened));
        StoreExportCatalog catalog = clustered != null ? clustered.catalog(fallback, durableWrites)
                : new StoreExportCatalog(opened, fallback, durableWrites);
        NbdServer server = new NbdServer(catalog, contexts);
        AdminServer admin = null;
        // SIGINT/SIGTERM: the hook asks the serving thread to stop and waits until it has closed
        // everything (admin socket removed, store committed and unlocked). Without the wait the JVM
        // could halt half-way through; with it a stop by signal is an orderly end, so it exits 0.
        Thread hook = new Thread(() -> {
            LOG.info("stopping: committing and closing {}", path);
            stopRequested.countDown();
            server.close(); // ends an inetd session still being served
            try {
                if (!stopped.await(STOP_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    LOG.error("stopping took longer than {} s; exiting anyway", STOP_TIMEOUT_SECONDS);
                    Runtime.getRuntime().halt(ExitCodes.OTHER);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            Runtime.getRuntime().halt(clean[0] ? ExitCodes.OK : ExitCodes.STORAGE);
        }, "cairn-shutdown");
        try {
            admin = clustered != null ? clustered.adminServer(path) : new AdminServer(AdminEndpoint.socketFor(path));
            LiveStores.register(path, opened, clustered);
            startSchedules(path, fallback);
            Runtime.getRuntime().addShutdownHook(hook);
            if (inetd) {
                server.serveInetd();
                return ExitCodes.OK;
            }
            InetSocketAddress address = "none".equals(listen) ? null : server.listenTcp(host(listen), port(listen));
            if (unixSocket != null) {
                server.listenUnix(unixSocket);
            }
            if (clustered != null) {
                clustered.start(address, server);
            }
            describe(out, path, opened, address);
            stopRequested.await();
            return ExitCodes.OK;
        } finally {
            try {
                server.close();
                if (admin != null) {
                    closeQuietly(admin);
                }
                LiveStores.unregister(path);
                clean[0] = closeQuietly(opened, path);
                if (clustered != null) {
                    clustered.close(); // leases go only once everything is durable
                }
                if (clean[0]) {
                    LOG.info("stopped; {} is committed and closed", path);
                }
            } catch (Throwable problem) {
                LOG.error("stopping failed", problem);
                throw problem;
            } finally {
                stopped.countDown();
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException stoppingBySignal) {
                    // The hook is running and exits the process once this thread is done.
                }
            }
        }
    }

    /** Starts the --snapshot-every schedules; a bad one stops the server before it serves anything. */
    private void startSchedules(Path path, String fallback) {
        Schedules schedules = LiveStores.requireServed(path, "--snapshot-every").schedules();
        for (String spec : snapshotEvery) {
            int colon = spec.indexOf(':');
            String interval = colon < 0 ? spec : spec.substring(0, colon);
            String disk = colon < 0 ? fallback : spec.substring(colon + 1);
            if (disk == null || disk.isEmpty()) {
                throw CommandFailure.usage("--snapshot-every " + spec + ": name the disk, as INTERVAL:NAME");
            }
            java.time.Duration every;
            try {
                every = Durations.parse(interval);
            } catch (IllegalArgumentException problem) {
                throw CommandFailure.usage("--snapshot-every " + spec + ": " + problem.getMessage());
            }
            schedules.start(disk, every, keepSnapshots);
            LOG.info("snapshotting {} every {}, keeping the newest {}", disk, Durations.human(every), keepSnapshots);
        }
    }

    private Store createDefault(Path path, StoreOptions options) throws IOException {
        Files.createDirectories(path.toAbsolutePath().getParent());
        Store created = Store.formatFile(path, DEFAULT_STORE_BYTES, Layout.defaultExtentBlocks(DEFAULT_STORE_BYTES), options);
        created.create(DEFAULT_DISK, DEFAULT_DISK_BYTES);
        created.commit();
        LOG.info("created {} (thin, {} bytes) with disk '{}' of {} bytes", path, DEFAULT_STORE_BYTES, DEFAULT_DISK,
                DEFAULT_DISK_BYTES);
        return created;
    }

    private void describe(PrintWriter out, Path path, Store opened, InetSocketAddress address) {
        out.println("Cairn is serving " + path.toAbsolutePath() + " over NBD.");
        for (String damage : opened.damage()) {
            // Served read-only so what is intact can be copied off; never served as if valid.
            LOG.error("damaged metadata, serving read-only: {}", damage);
            out.println("  READ-ONLY: the store is damaged (" + damage + "); run: bin/cairn check " + path);
        }
        String base = address == null ? null : "nbd://" + address.getHostString() + ":" + address.getPort() + "/";
        List<VdiInfo> disks = opened.listVdis(false);
        if (opened.isShared()) {
            out.println("Node '" + node + "' (id " + opened.node() + ") of the cluster at " + cluster + "; it serves the disks it holds:");
            java.util.Set<String> held = new java.util.HashSet<>(opened.heldVdis());
            disks = disks.stream().filter(disk -> held.contains(disk.name())).toList();
        }
        for (VdiInfo disk : disks) {
            out.println("  " + disk.name() + " (" + Sizes.human(disk.sizeBytes()) + ")"
                    + (base == null ? "" : "  " + base + disk.name()));
            for (SnapshotInfo snapshot : opened.snapshots(disk.name())) {
                String name = snapshot.label().isEmpty() ? snapshot.reference() : disk.name() + "@" + snapshot.label();
                out.println("    " + name + " (read-only)" + (base == null ? "" : "  " + base + name));
            }
        }
        if (unixSocket != null) {
            out.println("Unix socket: nbd+unix:///NAME?socket=" + unixSocket.toAbsolutePath());
        }
        if (base != null && !disks.isEmpty()) {
            String first = base + disks.getFirst().name();
            out.println("Connect, for example:");
            out.println("  qemu-img info " + first);
            out.println("  nbdinfo --map " + first);
            out.println("  nbdinfo --map=" + ChangedSinceContexts.PREFIX + "SNAP " + first + "   # changed since snapshot SNAP");
            out.println("  qemu-system-x86_64 -drive file=" + first + ",format=raw,cache=none ...");
        }
        out.println("Manage it while it runs: bin/cairn snapshot " + path + " NAME, bin/cairn list " + path + ", ...");
        out.println("Stop with Ctrl-C.");
        out.flush();
    }

    /** Closes the store; false (and logged) if its last commit failed. */
    private static boolean closeQuietly(Store opened, Path path) {
        try {
            opened.close();
            return true;
        } catch (RuntimeException problem) {
            LOG.error("closing {} failed: {}", path, problem.toString());
            return false;
        }
    }

    private static void closeQuietly(AdminServer admin) {
        try {
            admin.close();
        } catch (IOException | RuntimeException problem) {
            LOG.warn("closing the admin socket {} failed: {}", admin.socket(), problem.toString());
        }
    }

    static String host(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0) {
            throw CommandFailure.usage("--listen wants HOST:PORT, got '" + hostPort + "'");
        }
        return hostPort.substring(0, colon).replace("[", "").replace("]", "");
    }

    static int port(String hostPort) {
        try {
            int port = Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
            if (port < 0 || port > 65535) {
                throw new NumberFormatException();
            }
            return port;
        } catch (NumberFormatException e) {
            throw CommandFailure.usage("--listen wants HOST:PORT with a port from 0 to 65535, got '" + hostPort + "'");
        }
    }
}
