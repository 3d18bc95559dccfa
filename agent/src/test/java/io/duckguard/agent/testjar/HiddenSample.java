package io.duckguard.agent.testjar;

import io.duckguard.bootstrap.DuckGuardHooks;
import java.util.function.Supplier;

/** Stored under inst/ in a test jar by {@code InstClassLoaderTest}; defined there by the InstClassLoader. */
public class HiddenSample implements Supplier<Class<?>> {
    /** The DuckGuardHooks class this hidden class links against (must be the one copy, never an inst/ copy). */
    @Override
    public Class<?> get() {
        return DuckGuardHooks.class;
    }
}
