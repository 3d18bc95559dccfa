package io.duckguard.runtime.repository;

import java.util.List;

/** One shipped batch of whole commits: WAL bytes [walStart, walEnd) and the commits that end inside it. */
public record WalRecord(long walStart, long walEnd, List<CommitMark> commits, byte[] walBytes) {}
