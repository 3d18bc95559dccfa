package io.duckguard.runtime.crypto;

/** A repository object that cannot be trusted; the message names the object so an operator can find it. */
public final class CorruptObjectException extends Exception {
    private final String objectName;

    public CorruptObjectException(String objectName, String problem) {
        super("repository object " + objectName + ": " + problem);
        this.objectName = objectName;
    }

    public String objectName() {
        return objectName;
    }
}
