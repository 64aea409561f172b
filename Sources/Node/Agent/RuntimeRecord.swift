import Foundation
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What the node has made that outlives it if it is killed: tmpfs mounts, network namespaces and links, unlocked
/// vaults. Each is recorded (write, fsync, rename) *before* it is made, and removed from the record after it is
/// undone, so the next `vigil node run` undoes whatever a run killed with SIGKILL left (``recover(lockVaults:)``).
/// Workload processes are found without a record: each carries ``marker`` in its environment, inherited by its
/// children, so none escapes by forking.
public actor RuntimeRecord {
    /// The record's contents.
    struct Contents: Codable, Sendable {
        var mounts: [String] = []
        var namespaces: [String] = []
        var links: [String] = []
        var vaults: [String] = []
    }

    /// The record's file.
    public nonisolated let path: String
    /// `VIGIL_NODE=<id>`: the environment entry every workload of this node carries.
    public nonisolated let marker: String
    private var contents: Contents

    /// The record in `stateDirectory` (read if present; an unreadable one is kept aside and treated as full
    /// cleanup of everything Vigil names).
    public init(stateDirectory: String) {
        path = stateDirectory + "/runtime.json"
        marker = Self.marker(stateDirectory: stateDirectory)
        if let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20,
            let c = try? JSONDecoder().decode(Contents.self, from: data)
        {
            contents = c
        } else {
            contents = Contents()
        }
    }

    /// The environment entry of the workloads of the node with `stateDirectory`.
    public static func marker(stateDirectory: String) -> String { "VIGIL_NODE=" + nodeID(stateDirectory) }

    /// The processes whose environment carries `marker` (a node's workloads and everything they started).
    public static func processes(carrying marker: String) -> [Int32] {
        processIDs().filter { pid in
            guard pid != getpid(), let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else {
                return false
            }
            return env.split(separator: 0).contains { $0.elementsEqual(marker.utf8) }
        }
    }

    /// A short id for the node's state directory (workloads of two nodes on one host are told apart).
    static func nodeID(_ stateDirectory: String) -> String {
        let canonical = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: a label, not a security boundary
        for b in canonical.utf8 {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        return String(h, radix: 16)
    }

    func save() throws {
        let data = try JSONEncoder().encode(contents)
        try AtomicFile.write(Array(data), to: URL(fileURLWithPath: path), mode: 0o600)
    }

    /// Records a mount point before mounting it.
    public func willMount(_ path: String) throws {
        guard !contents.mounts.contains(path) else { return }
        contents.mounts.append(path)
        try save()
    }
    /// Forgets a mount point once unmounted.
    public func unmounted(_ path: String) throws {
        contents.mounts.removeAll { $0 == path }
        try save()
    }
    /// Records a network namespace and its host-side link before creating them.
    public func willCreateNetwork(namespace: String, link: String) throws {
        if !contents.namespaces.contains(namespace) { contents.namespaces.append(namespace) }
        if !contents.links.contains(link) { contents.links.append(link) }
        try save()
    }
    /// Forgets a network once deleted.
    public func deletedNetwork(namespace: String, link: String) throws {
        contents.namespaces.removeAll { $0 == namespace }
        contents.links.removeAll { $0 == link }
        try save()
    }
    /// Records a vault before unlocking it.
    public func willUnlock(_ vault: String) throws {
        guard !contents.vaults.contains(vault) else { return }
        contents.vaults.append(vault)
        try save()
    }
    /// Forgets a vault once locked.
    public func locked(_ vault: String) throws {
        contents.vaults.removeAll { $0 == vault }
        try save()
    }

    /// What a recovery found and undid.
    public struct Recovery: Sendable {
        /// Workload processes killed.
        public var killed: [Int32] = []
        /// Mounts unmounted.
        public var unmounted: [String] = []
        /// Networks deleted.
        public var networks: [String] = []
        /// Vaults locked (or found locked).
        public var vaults: [String] = []
        /// What could not be undone, and why.
        public var problems: [String] = []
        /// Whether there was anything to undo.
        public var isEmpty: Bool { killed.isEmpty && unmounted.isEmpty && networks.isEmpty && vaults.isEmpty }
    }

    /// Undoes what a previous run left: kills this node's workload processes (by ``marker``), unmounts its
    /// tmpfs mounts (their secrets go with them), deletes its networks, and locks its vaults (`lockVault` is
    /// called for every recorded vault and every configured one).
    public func recover(lockVault: (String) async throws -> Bool, configuredVaults: [String]) async -> Recovery {
        var r = Recovery()
        r.killed = Self.killMarked(marker)
        for m in contents.mounts.reversed() {
            let wasMounted = Self.isMountPoint(m)
            guard Self.unmount(m) else {
                r.problems.append("umount \(m): \(String(cString: strerror(errno)))")
                continue
            }
            if wasMounted { r.unmounted.append(m) }
            contents.mounts.removeAll { $0 == m }
        }
        for (i, ns) in contents.namespaces.enumerated().reversed() {
            let link = i < contents.links.count ? contents.links[i] : nil
            if let link { _ = try? SystemTool.run(["ip", "link", "del", link]) }
            if (try? SystemTool.run(["ip", "netns", "del", ns])) != nil { r.networks.append(ns) }
        }
        contents.namespaces.removeAll()
        contents.links.removeAll()
        for v in Array(Set(contents.vaults + configuredVaults)).sorted() {
            do {
                if try await lockVault(v) { r.vaults.append(v) }
                contents.vaults.removeAll { $0 == v }
            } catch { r.problems.append("lock \(v): \(error)") }
        }
        do { try save() } catch { r.problems.append("runtime record \(path): \(error)") }
        return r
    }

    /// Kills (SIGKILL, whole process group) every process whose environment carries `marker`.
    static func killMarked(_ marker: String) -> [Int32] {
        var killed: [Int32] = []
        let me = getpid()
        for _ in 0..<5 {  // again, in case one forked while we looked
            var found = false
            for pid in processIDs() where pid != me {
                guard let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
                let entries = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                guard entries.contains(marker) else { continue }
                found = true
                let group = getpgid(pid)
                if group > 1, group != getpgrp() { kill(-group, SIGKILL) }
                kill(pid, SIGKILL)
                if !killed.contains(pid) { killed.append(pid) }
            }
            if !found { break }
            usleep(50_000)
        }
        return killed
    }

    static func processIDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }

    /// Unmounts `path` (lazily: open files keep it until they close); true when nothing is mounted there any
    /// more (EINVAL: not a mount point; ENOENT: gone). Not guessed from mountinfo, whose paths are escaped.
    static func unmount(_ path: String) -> Bool {
        while umount2(path, Int32(MNT_DETACH)) == 0 {}  // stacked mounts, all of them
        return errno == EINVAL || errno == ENOENT
    }

    /// Whether `path` is a mount point (listed in /proc/self/mountinfo).
    static func isMountPoint(_ path: String) -> Bool {
        guard let info = FileManager.default.contents(atPath: "/proc/self/mountinfo") else { return false }
        let target = URL(fileURLWithPath: path).standardizedFileURL.path
        return String(decoding: info, as: UTF8.self).split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4] == target
        }
    }
}
