package io.cairn.nbd;

import java.io.IOException;

/**
 * Serves {@link NbdTestFixture#createCatalog()} on the connection this process was started with, for
 * clients that spawn their server ({@code nbdinfo [ java ... ]}) and for inetd-style activation.
 */
public final class InetdMain {

    private InetdMain() {
    }

    public static void main(String[] args) throws IOException {
        try (NbdServer server = new NbdServer(NbdTestFixture.createCatalog())) {
            server.serveInetd();
        }
    }
}
