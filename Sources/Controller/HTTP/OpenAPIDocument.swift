import ControllerProtocol
import Foundation

/// The OpenAPI 3.0 description served at `/openapi.json`, generated from ``APIOperation/all`` (the list the
/// router registers), so the two cannot drift.
enum OpenAPIDocument {
    static let json: [UInt8] = {
        var paths: [String: [String: Any]] = [:]
        var schemas: [String: Any] = [
            "Error": [
                "type": "object", "required": ["error", "reason"],
                "properties": ["error": ["type": "string"], "reason": ["type": "string"]],
            ]
        ]
        for op in APIOperation.all {
            var operation: [String: Any] = [
                "operationId": op.id, "summary": op.summary,
                "responses": [
                    "200": response(op.response, &schemas),
                    "400": errorResponse("Malformed request: the reason names the field"),
                    "401": errorResponse("Not authenticated"),
                    "403": errorResponse("Refused: the code and reason say why"),
                    "413": errorResponse("Body larger than this route takes"),
                ],
            ]
            let parameters = op.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { p -> [String: Any] in
                [
                    "name": String(p.dropFirst().dropLast()), "in": "path", "required": true,
                    "schema": ["type": "string"],
                ]
            }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let body = op.requestBody {
                schemas[body] = ["type": "object"]
                operation["requestBody"] = [
                    "required": true,
                    "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(body)"]]],
                ]
            }
            switch op.access {
            case .open: operation["security"] = [[String: Any]]()
            case .device:
                operation["security"] = [["deviceSignature": [String]()]]
                operation["description"] =
                    "Signed by the TPM device key: Authorization: Vigil-TPM device=…, ts=…, rid=…, sig=…"
            case .viewer, .operator, .policyAdmin, .admin:
                operation["security"] = [["adminToken": [String]()]]
                operation["description"] = "Needs a token with role \(op.access.rawValue) or above."
            }
            paths[op.path, default: [:]][op.method.lowercased()] = operation
        }
        let document: [String: Any] = [
            "openapi": "3.0.3",
            "info": [
                "title": "Vigil controller API", "version": "1",
                "description": "Onboarding, attestation, secret release and the security team's API.",
            ],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": [
                    "adminToken": ["type": "http", "scheme": "bearer"],
                    "deviceSignature": ["type": "apiKey", "in": "header", "name": "Authorization"],
                ],
            ],
        ]
        return (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])).map(Array.init) ?? []
    }()

    static func response(_ type: String, _ schemas: inout [String: Any]) -> [String: Any] {
        switch type {
        case "text", "pem":
            return ["description": "OK", "content": ["text/plain": ["schema": ["type": "string"]]]]
        case "jwt":
            return ["description": "OK", "content": ["application/jwt": ["schema": ["type": "string"]]]]
        default:
            schemas[type] =
                type.hasSuffix("List") ? ["type": "array", "items": ["type": "object"]] : ["type": "object"]
            return [
                "description": "OK",
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(type)"]]],
            ]
        }
    }

    static func errorResponse(_ description: String) -> [String: Any] {
        [
            "description": description,
            "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
        ]
    }
}
