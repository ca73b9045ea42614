package io.cairn.nbd;

import java.net.InetSocketAddress;

/**
 * The export is not served by this server but by another one at {@link #server()} (a disk held by another
 * node of a cluster): the connection that asked for it is relayed there ({@link Relay}).
 */
public final class ServedElsewhereException extends NoSuchExportException {

    private final InetSocketAddress server;

    public ServedElsewhereException(String exportName, InetSocketAddress server) {
        super(exportName, "export '" + exportName + "' is served at " + server.getHostString() + ":" + server.getPort());
        this.server = server;
    }

    /** The NBD server that serves the export. */
    public InetSocketAddress server() {
        return server;
    }
}
