// The log line against Firecracker's format (src/vmm/src/logger/logging.rs, docs/logger.md):
// `<timestamp> [<instance id>:<thread>(:<LEVEL>)(:<file>:<line>)] <message>`.

import Foundation
import Logging
import Testing

@testable import Swiftlet

@Suite struct LogLineTests {
    /// A logger writing to a fresh file, and a swift-log `Logger` over it.
    struct Fixture {
        let directory = TemporaryDirectory()
        let metrics = MetricsRegistry()
        let sink: FirecrackerLogger
        let path: String

        init(_ configuration: LoggerConfiguration = LoggerConfiguration()) throws {
            sink = FirecrackerLogger(metrics: metrics)
            path = directory.file("log")
            var configuration = configuration
            configuration.logPath = path
            try sink.update(configuration)
        }

        func logger(_ label: String = "swiftlet.test") -> Logger {
            Logger(label: label) { sink.makeHandler(label: $0) }
        }

        func written() throws -> [String] { try lines(of: path) }
    }

    static let timestamp = #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}"#

    @Test func plainLineHasTimestampInstanceAndThread() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        fixture.logger().info("hello world")
        let thread = ThreadName.current
        let line = try #require(try fixture.written().first)
        #expect(line.wholeMatch(of: try Regex(Self.timestamp + #" \[anonymous-instance:\#(NSRegularExpression.escapedPattern(for: thread))\] hello world"#)) != nil, "\(line)")
    }

    @Test func showLevelAddsFirecrackersLevelName() throws {
        let fixture = try Fixture(LoggerConfiguration(level: .trace, showLevel: true))
        defer { fixture.directory.remove() }
        let logger = fixture.logger()
        logger.error("e"); logger.critical("c"); logger.warning("w"); logger.notice("n"); logger.info("i")
        logger.debug("d"); logger.trace("t")
        let levels = try fixture.written().map { line in
            String(line.split(separator: "]")[0].split(separator: ":").last!)
        }
        #expect(levels == ["ERROR", "ERROR", "WARN", "INFO", "INFO", "DEBUG", "TRACE"])
    }

    @Test func showLogOriginAddsFileAndLine() throws {
        let fixture = try Fixture(LoggerConfiguration(showLevel: true, showLogOrigin: true))
        defer { fixture.directory.remove() }
        fixture.logger().warning("where"); let line = #line
        let text = try #require(try fixture.written().first)
        #expect(text.hasSuffix(":WARN:ObservabilityTests/LogLineTests.swift:\(line)] where"), "\(text)")
    }

    @Test func originWithoutLevel() throws {
        let fixture = try Fixture(LoggerConfiguration(showLogOrigin: true))
        defer { fixture.directory.remove() }
        fixture.logger().warning("x"); let line = #line
        let text = try #require(try fixture.written().first)
        #expect(text.contains(":\(ThreadName.current):ObservabilityTests/LogLineTests.swift:\(line)] x"), "\(text)")
        #expect(!text.contains(":WARN"))
    }

    @Test func theThreadNameIsTheHostThreadsName() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let logger = fixture.logger()
        let thread = try HostThread(name: "obs-worker") { logger.info("from a thread") }
        thread.join()
        let text = try #require(try fixture.written().first)
        #expect(text.contains(" [anonymous-instance:obs-worker] from a thread"), "\(text)")
    }

    @Test func instanceIDAndMetadata() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        fixture.sink.instanceID = "vm-7"
        fixture.logger().info("booted", metadata: ["b": "2", "a": "1"])
        let text = try #require(try fixture.written().first)
        #expect(text.contains(" [vm-7:"))
        #expect(text.hasSuffix("] booted a=1 b=2"))
    }

    @Test func levelNamesParseLikeFirecrackers() throws {
        for (text, level) in [("Error", LogLevelFilter.error), ("ERROR", .error), ("warn", .warning), ("Warning", .warning),
                              ("WARNING", .warning), ("info", .info), ("Debug", .debug), ("tRaCe", .trace), ("OFF", .off)] {
            #expect(try LogLevelFilter(parsing: text) == level, "\(text)")
        }
        #expect(throws: ObservabilityError.invalidLogLevel("verbose")) { try LogLevelFilter(parsing: "verbose") }
        #expect(LogLevelFilter.warning.minimumLevel == .warning)
        #expect(LogLevelFilter.off.minimumLevel == nil)
    }

    @Test func theLevelFilters() throws {
        let fixture = try Fixture(LoggerConfiguration(level: .warning))
        defer { fixture.directory.remove() }
        let logger = fixture.logger()
        logger.info("dropped"); logger.warning("kept"); logger.error("kept too")
        #expect(try fixture.written().map { String($0.split(separator: "] ").last!) } == ["kept", "kept too"])

        try fixture.sink.update(LoggerConfiguration(level: .off))
        logger.error("silenced")
        #expect(try fixture.written().count == 2)
    }

    @Test func anUpdateWithoutALevelGoesBackToInfo() throws {
        let fixture = try Fixture(LoggerConfiguration(level: .error, showLevel: true))
        defer { fixture.directory.remove() }
        #expect(fixture.sink.level == .error)
        try fixture.sink.update(LoggerConfiguration(showLogOrigin: true))
        #expect(fixture.sink.level == FirecrackerLogger.defaultLevel)
        #expect(FirecrackerLogger.defaultLevel == .info)
        // The toggles not given are kept.
        fixture.logger().info("x")
        #expect(try fixture.written().first?.contains(":INFO:") == true)
    }

    @Test func theModuleFilterMatchesSourceOrLabelPrefix() throws {
        let fixture = try Fixture(LoggerConfiguration(module: "swiftlet.virtio"))
        defer { fixture.directory.remove() }
        fixture.logger("swiftlet.virtio-blk").info("block")
        fixture.logger("swiftlet.api").info("api")
        try fixture.sink.update(LoggerConfiguration(module: "ObservabilityTests"))
        fixture.logger("anything").info("by source")  // swift-log's source: this module's name
        #expect(try fixture.written().map { String($0.split(separator: "] ").last!) } == ["block", "by source"])
    }

    @Test func theDestinationCanChangeWhileRunning() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let logger = fixture.logger()
        logger.info("first")
        let second = fixture.directory.file("second")
        try fixture.sink.update(LoggerConfiguration(logPath: second))
        logger.info("second")
        #expect(try fixture.written().count == 1)
        #expect(try lines(of: second).count == 1)
        #expect(fixture.sink.logPath == second)
        // A bad path leaves everything as it was.
        #expect(throws: ObservabilityError.self) { try fixture.sink.update(LoggerConfiguration(logPath: "/nonexistent/x", level: .error)) }
        #expect(fixture.sink.logPath == second)
        #expect(fixture.sink.level == .info)
    }

    @Test func linesFromManyThreadsStayWhole() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let logger = fixture.logger()
        let threads = try (0..<4).map { index in
            try HostThread(name: "obs-\(index)") { for n in 0..<200 { logger.info("thread \(index) line \(n)") } }
        }
        threads.forEach { $0.join() }
        let written = try fixture.written()
        #expect(written.count == 800)
        #expect(written.allSatisfy { $0.wholeMatch(of: try! Regex(Self.timestamp + #" \[anonymous-instance:obs-\d\] thread \d line \d+"#)) != nil })
    }

    @Test func aFailedWriteIsCountedAsAMissedLog() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("log.fifo")
        #expect(mkfifo(path, 0o600) == 0)
        let metrics = MetricsRegistry()
        let sink = FirecrackerLogger(metrics: metrics)
        try sink.update(LoggerConfiguration(logPath: path))
        let logger = Logger(label: "x") { sink.makeHandler(label: $0) }
        let filler = String(repeating: "x", count: 4000)
        for _ in 0..<40 { logger.info("\(filler)") }  // 160 KB into a 64 KiB pipe nobody reads
        #expect((value(try parse(metrics.snapshot()), "logger", "missed_log_count") ?? 0) > 0)
    }
}
