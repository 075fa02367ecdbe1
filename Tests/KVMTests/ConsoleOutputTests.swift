import Foundation
import Testing
@testable import Swiftlet

/// The console output buffer between the guest's console devices and the host fd (issue 13, defect 1): the
/// device side never blocks, a reader that does not read costs dropped (counted) bytes, stopping is bounded, and
/// what was written before the stop still arrives.
@Suite struct ConsoleOutputTests {
    @Test("a reader that never reads: writes return at once, the excess is counted, stop ends within its bound")
    func unreadPipe() throws {
        let pipe = Pipe()   // never read
        let output = try ConsoleOutput(fd: pipe.fileHandleForWriting.fileDescriptor)
        try output.start()
        let began = Date()
        for _ in 0..<(1 << 20) { output.write(UInt8(ascii: "x")) }
        output.write(contentsOf: [UInt8](repeating: 0x79, count: 1 << 16)[...])
        #expect(Date().timeIntervalSince(began) < 5, "writing blocked")
        let stopping = Date()
        output.stop(drainMilliseconds: 200)
        #expect(Date().timeIntervalSince(stopping) < 2, "stop took \(Date().timeIntervalSince(stopping)) s")
        // At most the ring and the pipe's capacity got through.
        #expect(output.droppedBytes >= UInt64(1 << 19), "dropped \(output.droppedBytes)")
    }

    @Test("every byte that did not reach a full pipe is counted at stop, also those the writer had in hand and the ring never overflowed")
    func abandonedBytesAreCounted() throws {
        let pipe = Pipe()   // never read
        // One page, so that a few KiB fill it; far below the ring's 64 KiB, so nothing is dropped for lack of room.
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, 4096)
        let output = try ConsoleOutput(fd: pipe.fileHandleForWriting.fileDescriptor)
        try output.start()
        let total = 4096 + 3000
        output.write(contentsOf: [UInt8](repeating: 0x78, count: total)[...])
        // Until the pipe is full: the drain thread is then blocked in write(2) with the rest in hand.
        var queued: Int32 = 0
        for _ in 0..<500 {
            _ = ioctl(pipe.fileHandleForReading.fileDescriptor, UInt(FIONREAD), &queued)
            if queued >= 4096 { break }
            usleep(10_000)
        }
        output.stop(drainMilliseconds: 100)
        _ = ioctl(pipe.fileHandleForReading.fileDescriptor, UInt(FIONREAD), &queued)
        #expect(output.droppedBytes == UInt64(total) - UInt64(queued), "dropped \(output.droppedBytes), in the pipe \(queued)")
        #expect(output.droppedBytes > 0)
    }

    @Test("what was written before the stop reaches the fd, in order (a crashing guest's last words)")
    func lastWordsArrive() throws {
        let pipe = Pipe()
        let output = try ConsoleOutput(fd: pipe.fileHandleForWriting.fileDescriptor)
        for byte in Array("before start, ".utf8) { output.write(byte) }
        try output.start()
        for byte in Array("last words".utf8) { output.write(byte) }
        output.write(contentsOf: Array(" and more".utf8)[...])
        output.stop()
        try pipe.fileHandleForWriting.close()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "before start, last words and more")
        #expect(output.droppedBytes == 0)
    }

    @Test("bytes wrap around the ring's end intact")
    func wrapsAround() throws {
        let pipe = Pipe()
        let output = try ConsoleOutput(fd: pipe.fileHandleForWriting.fileDescriptor)
        try output.start()
        // Read concurrently so nothing is dropped; 3.5 rings' worth forces wrap-around at odd offsets.
        let expected = (0..<(ConsoleOutput.capacity * 7 / 2)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        final class Received: @unchecked Sendable { var data = Data() }   // written by the reader before `done`
        let received = Received()
        let done = DispatchSemaphore(value: 0)
        let readHandle = pipe.fileHandleForReading
        // A thread of its own, not a Dispatch worker: in the full parallel test run every worker can be held by
        // other suites' blocking waits for many seconds, and a reader that never runs makes the ring drop (by design).
        Thread.detachNewThread {
            received.data = readHandle.readDataToEndOfFile()
            done.signal()
        }
        var index = 0
        while index < expected.count {
            let end = min(index + 1000, expected.count)
            output.write(contentsOf: expected[index..<end])
            index = end
            while output.pendingBytes > ConsoleOutput.capacity / 2 { usleep(100) }
        }
        output.stop()
        try pipe.fileHandleForWriting.close()
        done.wait()
        #expect(output.droppedBytes == 0)
        #expect(Array(received.data) == expected)
    }
}
