// swift-tools-version: 6.2
import PackageDescription

// Vigil: a TPM-rooted trust and security core for edge devices.
//
// Layering (the verifier never links C):
//   Attest        pure Swift: TPM wire structures, quote verification, event logs, policy.
//                 The only code that runs on attacker-controlled bytes on the controller.
//   AttestTPM     device side: the TPM over libtss2-esys (CTSS2), identity provisioning.
//   Vault         device side: sealed disk keys (fscrypt, LUKS2). Depends on AttestTPM.
//   Node          device side: the node agent and the device commands behind `vigil`.
//   ControllerProtocol  the controller's HTTP API types and request signing, shared by both ends (pure Swift).
//   Controller    the fleet's verifier service (Hummingbird 2 over TLS, SQLite via libsqlite3 or PostgreSQL): links Attest and Policy,
//                 never libtss2.
//   EVEAPI        Swift generated from EVE's protobuf device API (lf-edge/eve-api), for the EVE-compatible endpoints.
//   ControllerClient  HTTPS client for the device and the security team (async-http-client).
//   vigil         the one executable: argument parsing only.
let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        // The verifier side (what a controller links): pure Swift, no libtss2.
        .library(name: "Attest", targets: ["Attest", "Policy"]),
        // The device side: the TPM over libtss2-esys.
        .library(name: "AttestTPM", targets: ["AttestTPM"]),
        .library(name: "Vault", targets: ["Vault"]),
        .library(name: "Node", targets: ["Node"]),
        .library(name: "Controller", targets: ["Controller", "ControllerProtocol", "EVEAPI"]),
        .executable(name: "vigil", targets: ["vigil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/attaswift/BigInt", from: "6.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // EVE's device API (protobuf): generated types in Sources/EVEAPI; gzip for its event logs.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // MARK: C system libraries (device side only)
        .systemLibrary(
            name: "CTSS2",
            pkgConfig: "tss2-esys",
            providers: [.apt(["libtss2-dev"])]
        ),

        // MARK: Verifier side: pure Swift, no C
        .target(
            name: "Attest",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                // The raw RSA public operation for TPM2_MakeCredential's OAEP-with-label seed encryption.
                .product(name: "BigInt", package: "BigInt"),
            ]
        ),

        // Security teams' attestation policies: YAML (Yams) → rules → self-explaining verdicts.
        .target(
            name: "Policy",
            dependencies: [
                "Attest",
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // MARK: Device side
        .target(
            name: "AttestTPM",
            dependencies: [
                "Attest",
                "CTSS2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Debian's libsqlite3: the controller's embedded database, its statements run on the caller's thread.
        .systemLibrary(
            name: "CSQLite3",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // libcryptsetup: LUKS2 volumes for the vault.
        .systemLibrary(
            name: "CCryptsetup",
            pkgConfig: "libcryptsetup",
            providers: [.apt(["libcryptsetup-dev"])]
        ),
        // ioctl(2) with a pointer argument (variadic C is not callable from Swift): fscrypt's ioctls.
        .target(name: "CVigilSystem"),
        .target(
            name: "Vault",
            dependencies: [
                "Attest", "AttestTPM", "CCryptsetup", "CVigilSystem", "SystemSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Node",
            dependencies: [
                "Attest",
                "AttestTPM",
                "Vault",
                "ControllerProtocol",
                "ControllerClient",
                "SystemSupport",
                // The manifest is read with the policies' hardened YAML tree (PolicyNode).
                "Policy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // Crash-safe files (write, fsync, rename, fsync the folder), for the device and the controller.
        .target(name: "SystemSupport"),

        // MARK: The controller (verifier side: never libtss2)
        .target(
            name: "ControllerProtocol",
            dependencies: [
                "Attest",
                .product(name: "Crypto", package: "swift-crypto"),
                // The signed attestation result (a JWT) that the controller issues and nodes and relying parties check.
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // EVE's device API: Swift generated from lf-edge/eve-api's protobuf files (scripts/generate-eve-api.sh).
        .target(
            name: "EVEAPI",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["proto"]
        ),
        .target(
            name: "Controller",
            dependencies: [
                "Attest",
                "Policy",
                "ControllerProtocol",
                "SystemSupport",
                "EVEAPI",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // EVE devices may sign with RSA (PKCS #1 v1.5) device certificates.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                // EVE devices send their event logs gzip-compressed.
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                // The dashboard's server-rendered pages (HTML-escaped templates compiled into the binary).
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "JWTKit", package: "jwt-kit"),
                "CSQLite3",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ControllerClient",
            dependencies: [
                "ControllerProtocol",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "VigilBenchmark",
            dependencies: [
                "Attest",
                "Policy",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Resources")]
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "Node",
                "Vault",
                "Policy",
                "VigilBenchmark",
                "Attest",
                "AttestTPM",
                "Controller",
                "ControllerClient",
                "ControllerProtocol",
                "SystemSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // MARK: Test support: child processes with deadlines; a private swtpm per test from swtpm-fixtures/
        .target(
            name: "ProcessSupport",
            path: "Tests/ProcessSupport"
        ),
        .target(
            name: "VigilTestSupport",
            dependencies: ["AttestTPM", "ProcessSupport"],
            path: "Tests/VigilTestSupport"
        ),
        .testTarget(
            name: "AttestTests",
            dependencies: [
                "Attest", "ProcessSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "PolicyTests",
            dependencies: [
                "Attest", "Policy",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "ControllerTests",
            dependencies: [
                "Attest", "AttestTPM", "Controller", "ControllerClient", "ControllerProtocol", "Node", "Policy",
                "ProcessSupport", "SystemSupport", "Vault", "VigilTestSupport", "EVEAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AttestTPMTests",
            dependencies: [
                "Attest", "AttestTPM", "Node", "Policy", "ProcessSupport", "SystemSupport", "Vault", "VigilTestSupport",
                "vigil",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
    ]
)

// One settings loop for every Swift target (swift-asn1 / Hummingbird style).
for target in package.targets where target.type != .system && target.name != "CVigilSystem" {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ])
    target.swiftSettings = settings
}
