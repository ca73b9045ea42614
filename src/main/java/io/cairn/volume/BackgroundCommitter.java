package io.cairn.volume;

/**
 * Commits a store on request, in its own thread, so that a caller that does not need to wait for
 * durability (a scheduled snapshot, {@code cairn snapshot --no-wait}) still gets it within one commit.
 * The store runs its reclamation the same way (Store design note 8): any store task that a burst of
 * requests may share.
 *
 * <ol>
 *   <li>Requests that arrive while a commit runs are served by one more commit: a burst of requests costs
 *       at most two commits, the one running and the next (group commit; the store's own grouping also lets
 *       waiting FLUSHes share them).</li>
 *   <li>A request is never lost: the flag is cleared before the commit that serves it starts.</li>
 *   <li>Threads: any thread requests; one platform thread, started with the first request, commits.
 *       {@link #stop()} ends it after the commit in progress; the store's close then commits what is left.</li>
 * </ol>
 */
final class BackgroundCommitter {

    private static final System.Logger LOG = System.getLogger(BackgroundCommitter.class.getName());

    private final Runnable commit;
    private final String threadName;
    private boolean requested;
    private boolean stopped;
    private Thread thread;

    BackgroundCommitter(Runnable commit, String threadName) {
        this.commit = commit;
        this.threadName = threadName;
    }

    synchronized void request() {
        if (stopped) {
            return;
        }
        requested = true;
        if (thread == null) {
            thread = Thread.ofPlatform().daemon().name(threadName).start(this::run);
        }
        notifyAll();
    }

    void stop() {
        Thread running;
        synchronized (this) {
            stopped = true;
            notifyAll();
            running = thread;
        }
        if (running != null && running != Thread.currentThread()) {
            try {
                running.join();
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void run() {
        while (true) {
            synchronized (this) {
                while (!requested && !stopped) {
                    try {
                        wait();
                    } catch (InterruptedException interrupted) {
                        return;
                    }
                }
                if (stopped) {
                    return;
                }
                requested = false;
            }
            try {
                commit.run();
            } catch (RuntimeException problem) {
                // The change stays in memory and the next commit (a FLUSH, another request, close) retries it;
                // a store that failed has said why and is read-only.
                LOG.log(System.Logger.Level.WARNING, threadName + ": " + problem.getMessage());
            }
        }
    }
}
