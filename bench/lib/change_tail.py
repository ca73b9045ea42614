#!/usr/bin/env python3
"""Where the slow snapshots and clones of a server's flight recording went.

    python3 bench/lib/change_tail.py RECORDING.jfr [--over-ms 0.5] [--kind CLONE|SNAPSHOT|ALL]

Reads the server's own events (io.cairn.ChangeTaken for every snapshot and clone taken, io.cairn.MetadataLockHeld
for holds of the metadata lock over 200 us, with the stack where each was let go) and the JVM's pauses
(jdk.GCPhasePause), and for every change taken in over --over-ms prints what overlapped it: the collector's
pauses, and the lock holds that ended while the change waited for the lock (the work that kept it waiting). Then a
summary: of the slow changes, how many were mostly a pause, mostly a long hold (by where it was let go), or neither
(the thread that made them was off the CPU: preemption, on this machine's two cores).

Needs JAVA_HOME (for its bin/jfr) or jfr on the PATH. A recording taken with
JDK_JAVA_OPTIONS=-XX:StartFlightRecording and dumped with jcmd (bench/snapshot-latency.sh's JFR_DUMP) has all three.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys

SKIPPED_FRAMES = ("io.cairn.volume.CombiningLock.", "io.cairn.volume.Store.underMeta", "io.cairn.volume.Store.mutate",
                  "io.cairn.volume.Store.combined", "io.cairn.volume.Store.lambda$", "java.", "jdk.internal.")


def nanos_of_instant(text):
    """2026-11-22T09:05:16.211547304Z -> nanoseconds since the day began (one recording spans less than a day)."""
    match = re.fullmatch(r"\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    hours, minutes, seconds, fraction = match.groups()
    fraction = (fraction or "0").ljust(9, "0")[:9]
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000_000 + int(fraction)


def nanos_of_duration(text):
    """PT0.035827707S, PT1M2.5S, PT0S -> nanoseconds."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text)
    hours, minutes, seconds = match.groups()
    whole, _, fraction = (seconds or "0").partition(".")
    return (((int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(whole)) * 1_000_000_000
            + int(fraction.ljust(9, "0")[:9] or 0))


def overlap(a_start, a_end, b_start, b_end):
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def released_at(event):
    """The first two frames of a hold's stack outside the lock and its wrappers: the code that let it go."""
    frames = (event["values"].get("stackTrace") or {}).get("frames") or []
    names = []
    for frame in frames:
        method = frame["method"]
        name = (method["type"]["name"] + "." + method["name"]).replace("/", ".")
        if not name.startswith(SKIPPED_FRAMES):
            names.append(name.replace("io.cairn.", ""))
            if len(names) == 2:
                break
    return " < ".join(names) or "(no stack)"


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--over-ms", type=float, default=0.5)
    parser.add_argument("--kind", default="ALL", choices=["ALL", "SNAPSHOT", "CLONE"])
    args = parser.parse_args()

    jfr = os.path.join(os.environ["JAVA_HOME"], "bin", "jfr") if os.environ.get("JAVA_HOME") else shutil.which("jfr")
    if not jfr or not os.path.exists(jfr):
        sys.exit("change_tail: set JAVA_HOME to a JDK (its bin/jfr reads the recording)")
    printed = subprocess.run([jfr, "print", "--json", "--stack-depth", "12", "--events",
                              "io.cairn.ChangeTaken,io.cairn.MetadataLockHeld,jdk.GCPhasePause", args.recording],
                             check=True, capture_output=True, text=True).stdout
    events = json.loads(printed)["recording"]["events"]

    changes, holds, pauses = [], [], []
    for event in events:
        values = event["values"]
        start = nanos_of_instant(values["startTime"])
        if event["type"] == "io.cairn.ChangeTaken":
            taken = nanos_of_duration(values["takenNanos"])
            lock_wait = nanos_of_duration(values["lockWaitNanos"])
            made_by = (values.get("eventThread") or {}).get("javaName") or "?"
            changes.append((start - taken, start, lock_wait, values["kind"], made_by))
        elif event["type"] == "io.cairn.MetadataLockHeld":
            end = start + nanos_of_duration(values["duration"])
            holder = (values.get("eventThread") or {}).get("javaName") or "?"
            holds.append((start, end, released_at(event), holder))
        else:
            pauses.append((start, start + nanos_of_duration(values["duration"])))

    kinds = collections.Counter(change[3] for change in changes)
    print("recording: %s; %d pauses, %d holds of the metadata lock over the threshold"
          % (", ".join("%d %s" % (n, k.lower() + "s") for k, n in sorted(kinds.items())), len(pauses), len(holds)))
    over = int(args.over_ms * 1_000_000)
    slow = [c for c in changes if c[1] - c[0] >= over and args.kind in ("ALL", c[3])]
    causes = collections.Counter()
    print("%-8s %9s %9s %9s %9s  %s" % ("kind", "taken ms", "lock ms", "pause ms", "held ms", "longest hold let go at (thread), made by"))
    for start, end, lock_wait, kind, made_by in slow:
        paused = sum(overlap(start, end, p0, p1) for p0, p1 in pauses)
        waiting_end = start + lock_wait
        # The hold that made the change is not one it waited for: skip the maker's hold that runs past the wait.
        in_wait = [(overlap(start, waiting_end, h0, h1), site, holder) for h0, h1, site, holder in holds
                   if overlap(start, waiting_end, h0, h1) > 0 and not (holder == made_by and h1 >= waiting_end)]
        held = max((h[0] for h in in_wait), default=0)
        longest = max(in_wait, default=(0, "-", "-"))
        taken = end - start
        if paused * 2 >= taken:
            cause = "collector pause"
        elif held * 2 >= taken:
            cause = "lock held: " + longest[1]
        else:
            cause = "neither (off the CPU, or the making)"
        causes[cause] += 1
        print("%-8s %9.3f %9.3f %9.3f %9.3f  %s (%s), made by %s"
              % (kind, taken / 1e6, lock_wait / 1e6, paused / 1e6, held / 1e6, longest[1], longest[2], made_by))
    print()
    print("holds of the metadata lock over the threshold, by where they were let go:")
    print("%6s %9s %9s %9s %10s  %s" % ("count", "p50 ms", "p99 ms", "max ms", "total ms", "let go at"))
    by_site = collections.defaultdict(list)
    for h0, h1, site, _ in holds:
        by_site[site].append(h1 - h0)
    for site, durations in sorted(by_site.items(), key=lambda item: -sum(item[1])):
        durations.sort()
        print("%6d %9.3f %9.3f %9.3f %10.1f  %s" % (len(durations), percentile(durations, 0.5) / 1e6,
                                                    percentile(durations, 0.99) / 1e6, durations[-1] / 1e6,
                                                    sum(durations) / 1e6, site))
    print()
    print("%d changes over %.2f ms:" % (len(slow), args.over_ms))
    for cause, count in causes.most_common():
        print("  %4d  %s" % (count, cause))


if __name__ == "__main__":
    main()
