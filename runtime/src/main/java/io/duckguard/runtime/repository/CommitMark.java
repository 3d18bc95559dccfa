package io.duckguard.runtime.repository;

/** One committed transaction in a WAL epoch: where its bytes end in the WAL, and when the agent saw it commit. */
public record CommitMark(long walEnd, long timeMillis) {}
