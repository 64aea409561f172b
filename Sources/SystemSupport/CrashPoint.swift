#if canImport(Glibc)
    import Glibc
#endif

/// Named points in crash-safe sequences (vault creation, reseal, recovery, escrow, atomic writes) where the
/// crash tests kill the process: when the environment variable `VIGIL_CRASH_AT` names a point, the process sends
/// itself SIGKILL there, exactly as a power cut or the OOM killer would stop it. Without the variable, nothing
/// happens (one `getenv` per point). The tests then check that what is on disk opens with the old state or the
/// new one, never neither.
public enum CrashPoint {
    /// The environment variable that names the point to die at.
    public static let variable = "VIGIL_CRASH_AT"

    /// Dies here with SIGKILL if `VIGIL_CRASH_AT` is `name`.
    public static func reached(_ name: StaticString) {
        guard let value = getenv(variable) else { return }
        if String(cString: value) == name.description { _ = kill(getpid(), SIGKILL) }
    }
}
