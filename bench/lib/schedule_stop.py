"""Stops the snapshot schedule of a disk in a running server and deletes the snapshots it kept (those
without a label), so that the next benchmark phase starts from a disk that shares nothing; prints how many
snapshots the schedule took.

    python3 schedule_stop.py STORE DISK
"""
import json
import re
import sys

import cairn_admin


def stop(store, disk):
    stopped = cairn_admin.run_ok(store, ["schedule", store, disk, "--stop"])
    listed = json.loads(cairn_admin.run_ok(store, ["snapshots", store, disk, "--json"]))
    for snapshot in listed["snapshots"]:
        if snapshot["label"] is None:
            cairn_admin.run_ok(store, ["delete", store, snapshot["reference"]])
    return int(re.search(r"after (\d+) snapshot", stopped).group(1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: schedule_stop.py STORE DISK")
    print(stop(sys.argv[1], sys.argv[2]))
