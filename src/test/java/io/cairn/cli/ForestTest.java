package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.VdiInfo;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Tree building and rendering from records alone, without a store. */
class ForestTest {

    private static final long GIB = 1L << 30;
    private static final long TAKEN_MILLIS = 1_700_000_000_000L;

    private final List<VdiInfo> disks = new ArrayList<>();
    private final List<SnapshotInfo> snapshots = new ArrayList<>();

    private void disk(long id, String name, long sizeBytes, long parentSnapshotId, boolean deleted) {
        disks.add(new VdiInfo(id, name, sizeBytes, parentSnapshotId, null, 0, 0, deleted, 0));
    }

    private void snapshot(long id, long diskId, String label, boolean deleted) {
        snapshots.add(new SnapshotInfo(id, diskId, "disk" + diskId, label, TAKEN_MILLIS + id * 1000, 10 * GIB, deleted));
    }

    /**
     * base has a deleted snapshot a clone came from, a live one with two clones, and a deleted one
     * nothing came from (hidden); a deleted disk is shown only because a live clone descends from it.
     */
    private Forest sampleForest() {
        disk(1, "base", 10 * GIB, 0, false);
        snapshot(1, 1, "gold", true);
        snapshot(2, 1, "", false);
        snapshot(4, 1, "old", true);
        disk(2, "kid", 10 * GIB, 1, false);
        snapshot(3, 2, "v1 \"best\"", false);
        disk(4, "grandkid", 10 * GIB, 3, false);
        disk(3, "gone", GIB, 0, true);
        snapshot(5, 3, "", true);
        snapshot(6, 3, "", true);
        disk(5, "orphan", GIB, 5, false);
        disk(6, "dead", GIB, 0, true);
        disk(7, "solo", GIB + GIB / 2, 0, false);
        disk(8, "kid2", 10 * GIB, 2, false);
        snapshot(7, 8, "", false);
        disk(9, "kid3", 10 * GIB, 2, false);
        // The engine lists by id, but the forest must not depend on it.
        Collections.shuffle(disks, new Random(7));
        Collections.shuffle(snapshots, new Random(7));
        return Forest.of(disks, snapshots);
    }

    @Test
    void textShowsSnapshotsInOrderWithClonesUnderThem() {
        assertEquals("""
                base (id 1, 10 GiB)
                |-- @1 gold (deleted)
                |   `-- kid (id 2, 10 GiB)
                |       `-- @3 v1 "best"
                |           `-- grandkid (id 4, 10 GiB)
                `-- @2
                    |-- kid2 (id 8, 10 GiB)
                    |   `-- @7
                    `-- kid3 (id 9, 10 GiB)
                gone (id 3, 1 GiB) (deleted)
                `-- @5 (deleted)
                    `-- orphan (id 5, 1 GiB)
                solo (id 7, 1.5 GiB)
                """, ForestRendering.text(sampleForest()));
    }

    @Test
    void dotHasANodePerShownDiskAndSnapshotAndAnEdgePerLink() {
        assertEquals("""
                digraph cairn {
                  node [fontname="monospace"];
                  disk1 [shape=box, label="base (id 1, 10 GiB)"];
                  snapshot1 [shape=ellipse, label="@1 gold (deleted)", style=dashed, color=grey, fontcolor=grey];
                  disk1 -> snapshot1;
                  disk2 [shape=box, label="kid (id 2, 10 GiB)"];
                  snapshot3 [shape=ellipse, label="@3 v1 \\"best\\""];
                  disk2 -> snapshot3;
                  disk4 [shape=box, label="grandkid (id 4, 10 GiB)"];
                  snapshot3 -> disk4 [style=dashed];
                  snapshot1 -> disk2 [style=dashed];
                  snapshot2 [shape=ellipse, label="@2"];
                  disk1 -> snapshot2;
                  disk8 [shape=box, label="kid2 (id 8, 10 GiB)"];
                  snapshot7 [shape=ellipse, label="@7"];
                  disk8 -> snapshot7;
                  snapshot2 -> disk8 [style=dashed];
                  disk9 [shape=box, label="kid3 (id 9, 10 GiB)"];
                  snapshot2 -> disk9 [style=dashed];
                  disk3 [shape=box, label="gone (id 3, 1 GiB) (deleted)", style=dashed, color=grey, fontcolor=grey];
                  snapshot5 [shape=ellipse, label="@5 (deleted)", style=dashed, color=grey, fontcolor=grey];
                  disk3 -> snapshot5;
                  disk5 [shape=box, label="orphan (id 5, 1 GiB)"];
                  snapshot5 -> disk5 [style=dashed];
                  disk7 [shape=box, label="solo (id 7, 1.5 GiB)"];
                }
                """, ForestRendering.dot(sampleForest()));
    }

    @Test
    void dotStringsEscapeQuotesAndBackslashes() {
        assertEquals("\"a\\\\b \\\"c\\\"\"", ForestRendering.dotString("a\\b \"c\""));
    }

    @Test
    @SuppressWarnings("unchecked")
    void jsonNestsClonesUnderSnapshotsAndParses() {
        Map<String, Object> root = JsonParser.parseObject(ForestRendering.json(sampleForest()));
        List<Map<String, Object>> roots = (List<Map<String, Object>>) root.get("disks");
        assertEquals(List.of("base", "gone", "solo"), roots.stream().map(disk -> disk.get("name")).toList());
        Map<String, Object> base = roots.get(0);
        assertEquals(10 * GIB, base.get("sizeBytes"));
        List<Map<String, Object>> baseSnapshots = (List<Map<String, Object>>) base.get("snapshots");
        assertEquals(List.of(1L, 2L), baseSnapshots.stream().map(snapshot -> snapshot.get("id")).toList());
        Map<String, Object> gold = baseSnapshots.get(0);
        assertEquals("gold", gold.get("label"));
        assertEquals(true, gold.get("deleted"));
        assertEquals("2023-11-14T22:13:21Z", gold.get("taken"));
        Map<String, Object> kid = ((List<Map<String, Object>>) gold.get("clones")).get(0);
        assertEquals("kid", kid.get("name"));
        Map<String, Object> v1 = ((List<Map<String, Object>>) kid.get("snapshots")).get(0);
        assertEquals("v1 \"best\"", v1.get("label"));
        assertEquals("grandkid", ((List<Map<String, Object>>) v1.get("clones")).get(0).get("name"));
        assertEquals(null, baseSnapshots.get(1).get("label"));
    }

    @Test
    void emptyStoreHasAnEmptyForest() {
        Forest forest = Forest.of(List.of(), List.of());
        assertEquals("", ForestRendering.text(forest));
        assertEquals("digraph cairn {\n  node [fontname=\"monospace\"];\n}\n", ForestRendering.dot(forest));
        assertEquals("{\"disks\":[]}", ForestRendering.json(forest));
    }

    @Test
    void deletedLineageWithNoLiveDescendantIsHidden() {
        disk(1, "base", GIB, 0, true);
        snapshot(1, 1, "", true);
        disk(2, "kid", GIB, 1, true);
        snapshot(2, 2, "", true);
        disk(3, "live", GIB, 0, false);
        assertEquals("live (id 3, 1 GiB)\n", ForestRendering.text(Forest.of(disks, snapshots)));
    }
}
