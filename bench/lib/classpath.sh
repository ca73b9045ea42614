# Sourced by the bench scripts (from the repository root): compiles the test classes and sets
# `classpath` to them, the main classes and every test-scope dependency.
cairn_bench_classpath() {
    local classpath_file=target/bench-classpath.txt
    ./mvnw -q -B -o test-compile dependency:build-classpath \
        -Dmdep.outputFile="$classpath_file" -Dmdep.includeScope=test >&2
    classpath="target/test-classes:target/classes:$(cat "$classpath_file")"
}
