package io.cairn.nbd;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A catalog of {@link MemoryExport}s for tests. */
final class MemoryCatalog implements ExportCatalog {

    private record Entry(MemoryExport export, String description) {
    }

    private final Map<String, Entry> exports = new LinkedHashMap<>();
    private String defaultName;

    synchronized MemoryCatalog add(String name, String description, MemoryExport export) {
        exports.put(name, new Entry(export, description));
        return this;
    }

    synchronized MemoryCatalog withDefault(String name) {
        defaultName = name;
        return this;
    }

    synchronized MemoryExport export(String name) {
        return exports.get(name).export();
    }

    /** Opens minus closes over all exports: 0 once every connection has let go. */
    synchronized int openHandles() {
        int open = 0;
        for (Entry entry : exports.values()) {
            open += entry.export().opens.get() - entry.export().closes.get();
        }
        return open;
    }

    @Override
    public synchronized List<ExportDescription> list() {
        List<ExportDescription> list = new ArrayList<>();
        exports.forEach((name, entry) -> list.add(new ExportDescription(name, entry.description())));
        return list;
    }

    @Override
    public synchronized NbdExport open(String name) throws NoSuchExportException {
        Entry entry = exports.get(name);
        if (entry == null) {
            throw new NoSuchExportException(name);
        }
        entry.export().opens.incrementAndGet();
        return entry.export();
    }

    @Override
    public synchronized Optional<String> defaultExportName() {
        return Optional.ofNullable(defaultName);
    }
}
