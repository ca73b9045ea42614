# Finds a JDK 25 or newer and exports JAVA_HOME and JAVA. Sourced by bin/cairn and bin/test.
#
# Order: $JAVA_HOME if it is new enough, then the Temurin 25 location used on our machines.

CAIRN_REQUIRED_JAVA_MAJOR=25
CAIRN_FALLBACK_JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64

# Prints the major version of the JDK at $1 (e.g. 25), or nothing if it is not a JDK.
cairn_java_major() {
    local home=$1 version=
    [[ -x "$home/bin/java" && -x "$home/bin/javac" ]] || return 0
    if [[ -r "$home/release" ]]; then
        version=$(sed -n 's/^JAVA_VERSION="\(.*\)"$/\1/p' "$home/release")
    fi
    if [[ -z "$version" ]]; then
        version=$("$home/bin/java" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    fi
    version=${version#1.}          # 1.8.0 -> 8.0
    printf '%s\n' "${version%%[.+-]*}"
}

cairn_find_java() {
    local candidate major java_home_major=
    [[ -n "${JAVA_HOME:-}" ]] && java_home_major=$(cairn_java_major "$JAVA_HOME")
    for candidate in "${JAVA_HOME:-}" "$CAIRN_FALLBACK_JAVA_HOME"; do
        [[ -n "$candidate" ]] || continue
        major=$(cairn_java_major "$candidate")
        if [[ -n "$major" && "$major" =~ ^[0-9]+$ ]] && (( major >= CAIRN_REQUIRED_JAVA_MAJOR )); then
            export JAVA_HOME=$candidate
            export JAVA="$candidate/bin/java"
            return 0
        fi
    done
    {
        echo "cairn: needs a JDK ${CAIRN_REQUIRED_JAVA_MAJOR} or newer, and found none."
        if [[ -n "${JAVA_HOME:-}" ]]; then
            if [[ -n "$java_home_major" ]]; then
                echo "  JAVA_HOME=$JAVA_HOME is Java $java_home_major."
            else
                echo "  JAVA_HOME=$JAVA_HOME is not a JDK."
            fi
        else
            echo "  JAVA_HOME is not set."
        fi
        echo "  $CAIRN_FALLBACK_JAVA_HOME does not exist or is not a JDK ${CAIRN_REQUIRED_JAVA_MAJOR}."
        echo "Install one, for example:"
        echo "  Debian/Ubuntu: add the Adoptium repository (https://adoptium.net/installation/linux/),"
        echo "                 then: sudo apt-get install temurin-25-jdk"
        echo "  or download a JDK 25 and run with JAVA_HOME=/path/to/jdk-25"
    } >&2
    return 1
}
