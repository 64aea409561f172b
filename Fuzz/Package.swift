// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for every parser that reads untrusted bytes (the verifier's `Attest` module and the
// controller's API bodies).
// Built separately from the main package because libFuzzer provides `main`:
//   Fuzz/run.sh [seconds]      builds with -sanitize=fuzzer,address and runs each target
let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "VigilFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Vigil", path: "..")],
    targets: [.target(name: "FuzzSupport")]
        + [
            "FuzzEventLog", "FuzzAttest", "FuzzSignature", "FuzzPublic", "FuzzPolicy", "FuzzEvidence",
            "FuzzAuthenticode",
        ].map { name in
            .executableTarget(
                name: name, dependencies: ["FuzzSupport", .product(name: "Attest", package: "Vigil")],
                swiftSettings: fuzzFlags)
        }
        + [
            // The controller's API bodies and the checks behind them.
            .executableTarget(
                name: "FuzzControllerAPI",
                dependencies: ["FuzzSupport", .product(name: "Controller", package: "Vigil")],
                swiftSettings: fuzzFlags),
            // EVE's device API: AuthContainer → ZAttestReq (quote → evidence, certificates), ZRegisterMsg.
            .executableTarget(
                name: "FuzzEVE",
                dependencies: ["FuzzSupport", .product(name: "Controller", package: "Vigil")],
                swiftSettings: fuzzFlags),
            // What a node agent reads: its manifest (YAML), its status file.
            .executableTarget(
                name: "FuzzNode",
                dependencies: ["FuzzSupport", .product(name: "Node", package: "Vigil")],
                swiftSettings: fuzzFlags),
            // What a vault reads back: the escrow the controller returns, the metadata beside the directory.
            .executableTarget(
                name: "FuzzVault",
                dependencies: ["FuzzSupport", .product(name: "Vault", package: "Vigil")],
                swiftSettings: fuzzFlags),
        ]
)
