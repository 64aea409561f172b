internal import CTSS2
import Logging

/// The one funnel every libtss2 call goes through: converts the return code into ``TPMError``
/// naming the function, and logs the call at trace level (no parameters: they may hold secrets).
@inline(__always)
func tss2Call(_ function: StaticString, logger: Logger? = nil, _ body: () -> TSS2_RC) throws(TPMError) {
    logger?.trace("tss2 call", metadata: ["tpm.command": "\(function)"])
    let rc = body()
    guard rc == 0 else {
        throw TPMError.tss2("\(function)", TSS2Error(rawValue: rc))
    }
}

/// Marshalling between Vigil's wire types (`Attest`) and libtss2's C structures, through libtss2-mu,
/// so that there is one Swift encoding of every structure and no field-by-field C copying.
enum MU {
    /// Decodes `bytes` into the C structure `T` with a `Tss2_MU_*_Unmarshal` function.
    static func unmarshal<T>(
        _ bytes: [UInt8], into initial: T,
        _ fn: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?, UnsafeMutablePointer<T>?) -> TSS2_RC,
        _ what: StaticString
    ) throws(TPMError) -> T {
        var value = initial
        var offset = 0
        let rc = bytes.withUnsafeBufferPointer { buf in
            fn(buf.baseAddress, buf.count, &offset, &value)
        }
        guard rc == 0 else { throw TPMError.invalidArgument("cannot encode \(what): \(TSS2Error(rawValue: rc))") }
        guard offset == bytes.count else {
            throw TPMError.invalidArgument("cannot encode \(what): \(bytes.count - offset) bytes left over")
        }
        return value
    }

    /// Encodes the C structure `T` with a `Tss2_MU_*_Marshal` function.
    static func marshal<T>(
        _ value: T, _ fn: (UnsafePointer<T>?, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?) -> TSS2_RC,
        _ what: StaticString
    ) throws(TPMError) -> [UInt8] {
        var v = value
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<T>.size * 2 + 64)
        var offset = 0
        let count = buffer.count
        let rc = buffer.withUnsafeMutableBufferPointer { buf in
            fn(&v, buf.baseAddress, count, &offset)
        }
        guard rc == 0 else {
            throw TPMError.invalidResponse("cannot decode \(what) from the TPM: \(TSS2Error(rawValue: rc))")
        }
        return Array(buffer.prefix(offset))
    }

    /// A TPM2B_* C structure's payload: marshal (UINT16 size + bytes) and drop the size.
    static func payload<T>(
        _ value: T, _ fn: (UnsafePointer<T>?, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?) -> TSS2_RC,
        _ what: StaticString
    ) throws(TPMError) -> [UInt8] {
        Array(try marshal(value, fn, what).dropFirst(2))
    }

    /// Builds a TPM2B_* C structure from its payload.
    static func tpm2b<T>(
        _ payload: [UInt8], into initial: T,
        _ fn: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?, UnsafeMutablePointer<T>?) -> TSS2_RC,
        _ what: StaticString
    ) throws(TPMError) -> T {
        guard payload.count <= Int(UInt16.max) else { throw TPMError.invalidArgument("\(what) is too large") }
        var w = [UInt8(truncatingIfNeeded: payload.count >> 8), UInt8(truncatingIfNeeded: payload.count)]
        w.append(contentsOf: payload)
        return try unmarshal(w, into: initial, fn, what)
    }
}
