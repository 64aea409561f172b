public import Foundation
import ProcessSupport

/// A 64 MiB ext4 image with the `encrypt` feature, made in a temporary folder and loop-mounted (needs root);
/// unmounted and deleted at deinit. `mounted` is false (and `failure` says why) when it could not be mounted.
public final class Ext4Image {
    public let directory: URL
    public let mountPoint: String
    public private(set) var mounted = false
    public private(set) var failure: String?

    public init() throws {
        directory = try ProcessRunner.temporaryDirectory()
        let image = directory.appendingPathComponent("fs.img").path
        mountPoint = directory.appendingPathComponent("mnt").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let truncate = try ProcessRunner.run("truncate", ["-s", "64M", image])
        let mkfs = try ProcessRunner.run("mkfs.ext4", ["-q", "-F", "-O", "encrypt", image])
        let mount = try ProcessRunner.run("mount", ["-o", "loop", image, mountPoint])
        mounted = truncate.status == 0 && mkfs.status == 0 && mount.status == 0
        if !mounted {
            failure = "truncate: \(truncate.stderr) mkfs.ext4: \(mkfs.stderr) mount -o loop: \(mount.stderr)"
        }
    }

    /// The image file.
    public var image: String { directory.appendingPathComponent("fs.img").path }

    public func unmount() {
        if mounted { _ = try? ProcessRunner.run("umount", [mountPoint]) }
        mounted = false
    }

    deinit {
        unmount()
        try? FileManager.default.removeItem(at: directory)
    }
}
