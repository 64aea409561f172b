import Foundation
import Node

/// What a node agent parses: the manifest (YAML, from the operator; it reaches `ip` and `nft` only through
/// parsed values) and its status file (read back by `vigil node status`). Seeds: Fuzz/seeds/FuzzNode.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let manifest = try? NodeManifest(yaml: String(decoding: bytes, as: UTF8.self)) {
        for n in manifest.networks { _ = n.allow.map(\.peer.description) }
    }
    _ = try? NodeStatus.decode(bytes)
    _ = IPAddressPrefix(String(decoding: bytes.prefix(64), as: UTF8.self))
    return 0
}
