// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "svirt",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SELinux", targets: ["SELinux"]),
        .library(name: "SELinuxPolicy", targets: ["SELinuxPolicy"]),
        .library(name: "SVirt", targets: ["SVirt"]),
        .library(name: "SVirtLinux", targets: ["SVirtLinux"]),
        .library(name: "SVirtXen", targets: ["SVirtXen"]),
        .executable(name: "svirt", targets: ["svirt"]),
        .executable(name: "svirt-bench", targets: ["svirt-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Only FullFoundation: svirt links Foundation anyway; ConfigurationSupport (swift-configuration) is not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
    ],
    targets: [
        .target(name: "SELinux", swiftSettings: strict),
        .target(name: "SELinuxPolicy", dependencies: ["SELinux"], swiftSettings: strict),
        .target(name: "SVirt", dependencies: ["SELinux", "SELinuxPolicy"], swiftSettings: strict),
        .target(name: "SVirtXen", dependencies: ["SELinux", "SELinuxPolicy", "SVirt"], swiftSettings: strict),
        .target(name: "CSVirt"),
        .target(
            name: "SVirtLinux",
            dependencies: [
                "SVirt", "CSVirt",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict),
        .target(
            name: "SVirtCluster",
            dependencies: [
                "SVirt", "SVirtLinux",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .target(
            name: "SVirtConsole",
            dependencies: [
                "SELinux", "SELinuxPolicy", "SVirt", "SVirtLinux",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict),
        .target(
            name: "SVirtCommands",
            dependencies: [
                "SELinux", "SELinuxPolicy", "SVirt", "SVirtLinux", "SVirtCluster", "SVirtXen", "SVirtConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "svirt", dependencies: ["SVirtCommands"], swiftSettings: strict),
        .executableTarget(
            name: "svirt-bench",
            dependencies: ["SELinux", "SELinuxPolicy", "SVirt", "SVirtLinux", "SVirtCluster"],
            swiftSettings: strict),
        .target(name: "SVirtTestSupport", dependencies: ["SVirt"], path: "Tests/SVirtTestSupport", swiftSettings: strict),
        .testTarget(name: "SELinuxTests", dependencies: ["SELinux", "SVirtTestSupport"], swiftSettings: strict),
        .testTarget(name: "SELinuxPolicyTests", dependencies: ["SELinuxPolicy", "SVirtTestSupport"], swiftSettings: strict),
        .testTarget(name: "SVirtTests", dependencies: ["SVirt"], swiftSettings: strict),
        .testTarget(name: "SVirtLinuxTests", dependencies: ["SVirtLinux", "SVirt", "SELinux", "CSVirt", "SVirtTestSupport",
                                                      .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: strict),
        .testTarget(name: "SVirtCommandsTests", dependencies: ["SVirtCommands", "SELinux", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .testTarget(name: "SVirtXenTests", dependencies: ["SVirtXen", "SVirt", "SELinuxPolicy", "SELinux", "SVirtTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "SVirtConsoleTests",
            dependencies: [
                "SVirtConsole", "SVirtLinux", "SVirt", "SELinux", "SVirtTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Boots a kernel with SELinux enforcing and runs the svirt binary in it (scripts/selinux-guest).
        .testTarget(name: "SELinuxGuestTests", swiftSettings: strict),
        .testTarget(name: "SVirtClusterTests", dependencies: ["SVirtCluster", "SVirtLinux", "SVirt", "SELinux"], swiftSettings: strict),
    ]
)
