public import Foundation

/// The one JSON convention of the controller's API, used by both ends: snake_case keys, RFC 3339 times,
/// sorted keys (stable output for audit digests and tests), and bounded, explained decoding of untrusted bodies.
public enum APIJSON {
    /// Encodes `value` as the API's JSON.
    public static func encode(_ value: some Encodable) throws(ControllerProtocolError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(value)) } catch {
            throw ControllerProtocolError(.invalid, "cannot encode \(type(of: value)): \(error)")
        }
    }

    /// Decodes an untrusted body as `type`. Larger than `limit`, not JSON, a missing or mistyped field: each
    /// throws `.invalid` or `.tooLarge` naming the field's path. Unknown fields are refused too (``knownKeys``),
    /// so a misspelt option is an error rather than silently ignored.
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: some DataProtocol, limit: Int, knownKeys: Set<String>? = nil
    ) throws(ControllerProtocolError) -> T {
        guard bytes.count <= limit else {
            throw ControllerProtocolError(.tooLarge, "\(T.self): \(bytes.count) bytes, more than the \(limit) allowed")
        }
        let data = Data(bytes)
        if let knownKeys {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ControllerProtocolError(.invalid, "\(T.self): the body is not a JSON object")
            }
            let unknown = Set(object.keys).subtracting(knownKeys)
            guard unknown.isEmpty else {
                throw ControllerProtocolError(
                    .invalid,
                    "\(T.self): unknown field\(unknown.count == 1 ? "" : "s") \(unknown.sorted().map { $0.debugDescription.prefix(64) }.joined(separator: ", "))"
                )
            }
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(T.self, from: data) } catch let error as DecodingError {
            throw ControllerProtocolError(.invalid, "\(T.self): \(describe(error))")
        } catch {
            throw ControllerProtocolError(.invalid, "\(T.self): \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.isEmpty
                ? "the body"
                : c.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let ctx): return "missing field \(path(ctx.codingPath + [key]))"
        case .typeMismatch(_, let ctx): return "\(path(ctx.codingPath)) has the wrong type"
        case .valueNotFound(_, let ctx): return "\(path(ctx.codingPath)) is null"
        case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "undecodable"
        }
    }

    /// `akPublic` → `ak_public`: field names as the client wrote them.
    static func snakeCase(_ key: String) -> String {
        var out = ""
        for c in key {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Decodes base64 from a field, naming the field when it is not base64 or longer than `limit` bytes.
    public static func base64(_ text: String, field: String, limit: Int) throws(ControllerProtocolError) -> [UInt8] {
        guard text.utf8.count <= (limit + 2) / 3 * 4 + 4, let data = Data(base64Encoded: text), data.count <= limit
        else {
            throw ControllerProtocolError(.invalid, "\(field): not base64 of at most \(limit) bytes")
        }
        return Array(data)
    }
}

/// The body of every error response: a stable code and a reason that names what was refused and why.
public struct APIErrorBody: Codable, Sendable, Hashable {
    /// A stable, machine-readable code (`nonce_used`, `not_attested`, `device_revoked`, …).
    public var error: String
    /// What was refused and why.
    public var reason: String

    /// An error body.
    public init(error: String, reason: String) {
        self.error = error
        self.reason = reason
    }
}
