package io.cairn.cli;

import java.util.List;

/** The three ways {@code cairn tree} shows a {@link Forest}: indented text, Graphviz DOT and JSON. */
final class ForestRendering {

    private ForestRendering() {
    }

    // ---------------------------------------------------------------- text

    /** ASCII connectors, so the tree reads the same in any terminal encoding and in golden files. */
    static String text(Forest forest) {
        StringBuilder out = new StringBuilder();
        for (Forest.Disk root : forest.roots()) {
            out.append(diskLine(root)).append('\n');
            textChildren(root, "", out);
        }
        return out.toString();
    }

    private static void textChildren(Forest.Disk disk, String indent, StringBuilder out) {
        List<Forest.Snapshot> snapshots = disk.snapshots();
        for (int i = 0; i < snapshots.size(); i++) {
            boolean last = i == snapshots.size() - 1;
            Forest.Snapshot snapshot = snapshots.get(i);
            out.append(indent).append(last ? "`-- " : "|-- ").append(snapshotLine(snapshot)).append('\n');
            String cloneIndent = indent + (last ? "    " : "|   ");
            List<Forest.Disk> clones = snapshot.clones();
            for (int j = 0; j < clones.size(); j++) {
                boolean lastClone = j == clones.size() - 1;
                out.append(cloneIndent).append(lastClone ? "`-- " : "|-- ").append(diskLine(clones.get(j))).append('\n');
                textChildren(clones.get(j), cloneIndent + (lastClone ? "    " : "|   "), out);
            }
        }
    }

    static String diskLine(Forest.Disk disk) {
        return disk.info().name() + " (id " + disk.info().id() + ", " + Sizes.human(disk.info().sizeBytes()) + ")"
                + (disk.info().deleted() ? " (deleted)" : "");
    }

    static String snapshotLine(Forest.Snapshot snapshot) {
        String label = snapshot.info().label();
        return "@" + snapshot.info().id() + (label.isEmpty() ? "" : " " + label)
                + (snapshot.info().deleted() ? " (deleted)" : "");
    }

    // ---------------------------------------------------------------- DOT

    /**
     * Disks are boxes, snapshots ellipses; a disk points to its snapshots, a snapshot to its clones
     * (dashed). Deleted nodes are grey and dashed.
     */
    static String dot(Forest forest) {
        StringBuilder out = new StringBuilder("digraph cairn {\n  node [fontname=\"monospace\"];\n");
        for (Forest.Disk root : forest.roots()) {
            dotDisk(root, out);
        }
        return out.append("}\n").toString();
    }

    private static void dotDisk(Forest.Disk disk, StringBuilder out) {
        String id = "disk" + disk.info().id();
        out.append("  ").append(id).append(" [shape=box, label=").append(dotString(diskLine(disk)))
                .append(deletedStyle(disk.info().deleted())).append("];\n");
        for (Forest.Snapshot snapshot : disk.snapshots()) {
            String snapshotId = "snapshot" + snapshot.info().id();
            out.append("  ").append(snapshotId).append(" [shape=ellipse, label=")
                    .append(dotString(snapshotLine(snapshot))).append(deletedStyle(snapshot.info().deleted())).append("];\n");
            out.append("  ").append(id).append(" -> ").append(snapshotId).append(";\n");
            for (Forest.Disk clone : snapshot.clones()) {
                dotDisk(clone, out);
                out.append("  ").append(snapshotId).append(" -> disk").append(clone.info().id())
                        .append(" [style=dashed];\n");
            }
        }
    }

    private static String deletedStyle(boolean deleted) {
        return deleted ? ", style=dashed, color=grey, fontcolor=grey" : "";
    }

    /** A DOT string literal; labels may hold quotes and backslashes. */
    static String dotString(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    // ---------------------------------------------------------------- JSON

    static String json(Forest forest) {
        Json json = new Json().beginObject().name("disks").beginArray();
        for (Forest.Disk root : forest.roots()) {
            jsonDisk(root, json);
        }
        return json.endArray().endObject().toString();
    }

    private static void jsonDisk(Forest.Disk disk, Json json) {
        json.beginObject()
                .field("name", disk.info().name())
                .field("id", disk.info().id())
                .field("sizeBytes", disk.info().sizeBytes())
                .field("deleted", disk.info().deleted())
                .name("snapshots").beginArray();
        for (Forest.Snapshot snapshot : disk.snapshots()) {
            json.beginObject()
                    .field("id", snapshot.info().id())
                    .field("label", snapshot.info().label().isEmpty() ? null : snapshot.info().label())
                    .field("taken", Times.iso(snapshot.info().takenMillis()))
                    .field("deleted", snapshot.info().deleted())
                    .name("clones").beginArray();
            for (Forest.Disk clone : snapshot.clones()) {
                jsonDisk(clone, json);
            }
            json.endArray().endObject();
        }
        json.endArray().endObject();
    }
}
