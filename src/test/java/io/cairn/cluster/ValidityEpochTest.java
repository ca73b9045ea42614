package io.cairn.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ValidityEpochTest {

    private static final long WINDOW_NANOS = TimeUnit.MILLISECONDS.toNanos(200);

    @Test
    void validFromTheFirstConfirmationUntilSendTimePlusWindow() {
        ValidityEpoch epoch = ValidityEpoch.forSession(7, WINDOW_NANOS);
        long now = System.nanoTime();
        assertFalse(epoch.isValid(now), "not valid before any answer from the server");
        long sent = now - TimeUnit.MILLISECONDS.toNanos(50);
        assertTrue(epoch.confirm(sent));
        assertTrue(epoch.isValid(now));
        assertTrue(epoch.isValid(sent + WINDOW_NANOS - 1));
        assertFalse(epoch.isValid(sent + WINDOW_NANOS), "the window counts from the send time, not the answer");
        // An older answer arriving late does not shorten the window.
        assertTrue(epoch.confirm(sent - WINDOW_NANOS / 2));
        assertTrue(epoch.isValid(sent + WINDOW_NANOS - 1));
    }

    @Test
    void aLapsedEpochNeverBecomesValidAgain() throws InterruptedException {
        ValidityEpoch epoch = ValidityEpoch.forSession(7, TimeUnit.MILLISECONDS.toNanos(20));
        assertTrue(epoch.confirm(System.nanoTime()));
        Thread.sleep(40);
        assertTrue(epoch.lapsed(System.nanoTime()));
        long lateSent = System.nanoTime();
        assertFalse(epoch.confirm(lateSent), "an answer after the window closed does not reopen it");
        assertFalse(epoch.isValid(System.nanoTime()));
        assertFalse(epoch.lapsed(System.nanoTime()), "it has ended, with a reason");
        assertEquals("not confirmed by ZooKeeper within 20 ms", epoch.endReason());
    }

    @Test
    void anEndedEpochStaysEndedWithItsFirstReason() {
        ValidityEpoch unlimited = ValidityEpoch.unlimited();
        assertTrue(unlimited.isValid(Long.MIN_VALUE));
        assertTrue(unlimited.isValid(Long.MAX_VALUE));
        unlimited.end("closed");
        unlimited.end("again");
        assertFalse(unlimited.isValid(System.nanoTime()));
        assertEquals("closed", unlimited.endReason());
        assertFalse(unlimited.confirm(System.nanoTime()));
    }
}
