package io.duckguard.runtime.repository;

import java.io.IOException;

/** A problem with the repository that an operator must act on; the message says what and what to do. */
public class RepositoryException extends IOException {
    public RepositoryException(String message) {
        super(message);
    }

    public RepositoryException(String message, Throwable cause) {
        super(message, cause);
    }
}
