import Foundation
import Vault

/// What a vault parses from outside: the escrow document the controller hands back (``VaultEscrow/init(json:)``),
/// and the metadata file beside the directory (``FSCryptVault/Metadata``) with the sealing and escrow key in it.
/// Seeds: Fuzz/seeds/FuzzVault.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? VaultEscrow(json: bytes)
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    if bytes.count <= 1 << 20, let metadata = try? decoder.decode(FSCryptVault.Metadata.self, from: Data(bytes)) {
        _ = metadata.sealing.pcrs.count
    }
    return 0
}
