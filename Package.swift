// swift-tools-version: 6.2
import PackageDescription

/// One set of compiler settings for every target: Swift 6 language mode plus upcoming features.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "erp-sync",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "erp-sync", targets: ["erp-sync"]),
        .library(name: "SyncCore", targets: ["SyncCore"]),
        .library(name: "SQLiteConnector", targets: ["SQLiteConnector"]),
        .library(name: "PostgresConnector", targets: ["PostgresConnector"]),
        .library(name: "MySQLConnector", targets: ["MySQLConnector"]),
        .library(name: "ODBCConnector", targets: ["ODBCConnector"]),
    ],
    traits: [
        .trait(name: "MySQL", description: "MySQL/MariaDB sources through MariaDB Connector/C (needs libmariadb-dev, pkg-config libmariadb)"),
        .trait(name: "ODBC", description: "SQL Server, Oracle and any ODBC source through unixODBC (needs unixodbc-dev, pkg-config odbc, and the database's ODBC driver)"),
        .default(enabledTraits: ["MySQL", "ODBC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .target(
            name: "SyncCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SQLiteConnector",
            dependencies: [
                "SyncCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresConnector",
            dependencies: [
                "SyncCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SyncServer",
            dependencies: [
                "SyncCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The dashboard's page, script and style, compiled into the binary (no files to ship, works offline).
            resources: [.embedInCode("Dashboard")],
            swiftSettings: swiftSettings
        ),
        // MariaDB Connector/C (Debian libmariadb-dev). Its sources compile only with the `MySQL` trait.
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        .target(
            name: "MySQLConnector",
            dependencies: [
                "SyncCore",
                .target(name: "CMariaDB", condition: .when(traits: ["MySQL"])),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // unixODBC's driver manager (Debian unixodbc-dev). Its sources compile only with the `ODBC` trait.
        .systemLibrary(
            name: "CUnixODBC",
            pkgConfig: "odbc",
            providers: [.apt(["unixodbc-dev"])]
        ),
        .target(
            name: "ODBCConnector",
            dependencies: [
                "SyncCore",
                .target(name: "CUnixODBC", condition: .when(traits: ["ODBC"])),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "erp-sync",
            dependencies: [
                "SyncCore",
                "SQLiteConnector",
                "PostgresConnector",
                "SyncServer",
                .target(name: "MySQLConnector", condition: .when(traits: ["MySQL"])),
                .target(name: "ODBCConnector", condition: .when(traits: ["ODBC"])),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        // Test support shared by the test targets: in-memory source and destination, generators, clocks.
        .target(
            name: "SyncTesting",
            dependencies: ["SyncCore"],
            path: "Tests/SyncTesting",
            swiftSettings: swiftSettings
        ),
        // Helpers of the integration suites on real servers.
        .target(
            name: "IntegrationTesting",
            dependencies: [
                "SyncCore", "SyncTesting", "PostgresConnector",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/IntegrationTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SyncCoreTests",
            dependencies: ["SyncCore", "SyncTesting", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SyncServerTests",
            dependencies: [
                "SyncServer",
                "SyncCore",
                "SQLiteConnector",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["erp-sync", "SyncTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresConnectorTests",
            dependencies: ["SyncCore", "SyncTesting", "IntegrationTesting", "SQLiteConnector", "PostgresConnector",
                           .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MySQLConnectorTests",
            dependencies: [
                "SyncCore", "SyncTesting", "IntegrationTesting", "SQLiteConnector", "PostgresConnector",
                .target(name: "MySQLConnector", condition: .when(traits: ["MySQL"])),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ODBCConnectorTests",
            dependencies: [
                "SyncCore", "SQLiteConnector", "PostgresConnector", .target(name: "CUnixODBC", condition: .when(traits: ["ODBC"])),
                .target(name: "ODBCConnector", condition: .when(traits: ["ODBC"])),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SQLiteConnectorTests",
            dependencies: ["SyncCore", "SyncTesting", "SQLiteConnector", .product(name: "SQLiteNIO", package: "sqlite-nio")],
            swiftSettings: swiftSettings
        ),
    ]
)
