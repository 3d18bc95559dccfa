package io.duckguard.runtime.cli;

import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Binds a well-formed command line to a verb's {@link Option} fields without building picocli's model, which costs
 * 0.15-0.19 s of a cold JVM (measured: a CLI restore of the benchmark's 1 GB snapshot spends ~0.75 s restoring and
 * ~0.35 s before that, half of it in picocli). The options are still declared once, with picocli's annotations, and
 * read from them here; anything this binder does not handle exactly as picocli would (help, an unknown or repeated
 * option, a missing value or required option, a value that does not convert) makes it give up, and picocli then
 * parses the same arguments and reports the problem as before. So this only ever decides the well-formed case.
 *
 * <p>Handles: {@code --name value} (a value not starting with {@code -}) and {@code --name=value} for String, Path and
 * int fields, flags ({@code --name} alone) for boolean fields, {@code defaultValue}, {@code required}, and fields of
 * {@link Mixin} objects.
 */
final class FastArgs {
    private FastArgs() {}

    private record Target(Object owner, Field field, Option option) {}

    /**
     * Sets {@code command}'s option fields from {@code args} (the verb's arguments, without the verb).
     *
     * @return whether it did; false leaves the fields in an unspecified state: use a fresh command with picocli
     */
    static boolean bind(Object command, String[] args) {
        try {
            Map<String, Target> byName = new HashMap<>();
            collect(command, byName);
            Set<Target> seen = new HashSet<>();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                int eq = a.indexOf('=');
                String name = eq > 0 ? a.substring(0, eq) : a;
                Target t = byName.get(name);
                if (t == null || t.option().help() || t.option().usageHelp() || t.option().versionHelp() || !seen.add(t)) return false;
                Class<?> type = t.field().getType();
                if (type == boolean.class) {
                    if (eq > 0) return false;
                    t.field().setBoolean(t.owner(), true);
                    continue;
                }
                String value;
                if (eq > 0) {
                    value = a.substring(eq + 1);
                } else {
                    // a value that looks like an option is left to picocli's rules for it
                    if (i + 1 >= args.length || args[i + 1].startsWith("-")) return false;
                    value = args[++i];
                }
                if (!set(t, value)) return false;
            }
            for (Target t : new HashSet<>(byName.values())) {
                if (seen.contains(t)) continue;
                if (t.option().required()) return false;
                String def = t.option().defaultValue();
                if (!def.equals(Option.NULL_VALUE) && !def.equals("__no_default_value__") && !set(t, def)) return false;
            }
            return true;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return false; // picocli will say what is wrong, or do what this cannot
        }
    }

    private static boolean set(Target t, String value) throws IllegalAccessException {
        Class<?> type = t.field().getType();
        if (type == String.class) {
            t.field().set(t.owner(), value);
        } else if (type == Path.class) {
            t.field().set(t.owner(), Path.of(value));
        } else if (type == int.class) {
            try {
                t.field().setInt(t.owner(), Integer.parseInt(value));
            } catch (NumberFormatException e) {
                return false;
            }
        } else {
            return false;
        }
        return true;
    }

    private static void collect(Object o, Map<String, Target> byName) throws IllegalAccessException {
        for (Class<?> c = o.getClass(); c != Object.class; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                Option opt = f.getAnnotation(Option.class);
                if (opt != null) {
                    f.setAccessible(true);
                    Target t = new Target(o, f, opt);
                    for (String n : opt.names()) {
                        if (byName.put(n, t) != null) throw new IllegalStateException("option " + n + " declared twice");
                    }
                } else if (f.isAnnotationPresent(Mixin.class)) {
                    f.setAccessible(true);
                    Object mixin = f.get(o);
                    if (mixin == null) throw new IllegalStateException("mixin " + f.getName() + " not created");
                    collect(mixin, byName);
                }
            }
        }
    }
}
