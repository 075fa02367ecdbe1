// The guest agent's protocol as either side receives it (docs/agent.md): a byte stream of frames cut into
// arbitrary chunks (the first input byte picks the chunk size), fed to FrameDecoder as the agent and the host
// feed it. Every message that decodes must survive encode → decode unchanged; a stream with a bad frame is
// dropped at its first error, as AgentConnection and GuestAgent drop the connection.
import AgentProtocol
import FuzzSupport

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let chunkSize = Int(input.integer(UInt8.self)) + 1
    let stream = input.rest()
    var decoder = FrameDecoder()
    var offset = 0
    feeding: while offset < stream.count {
        decoder.append(stream[offset..<min(stream.count, offset + chunkSize)])
        offset += chunkSize
        while true {
            let message: AgentMessage
            do {
                guard let next = try decoder.next() else { break }
                message = next
            } catch {
                break feeding
            }
            // An error message's text is cut to 4 KiB when encoded: longer ones cannot come back equal.
            if case let .error(error) = message, error.message.utf8.count > 4096 { continue }
            var again = FrameDecoder()
            again.append(AgentFrame.encode(message))
            let decoded: AgentMessage?
            do { decoded = try again.next() } catch { preconditionFailure("\(message) encoded to a frame that does not decode: \(error)") }
            precondition(decoded == message, "\(message) came back as \(String(describing: decoded))")
        }
    }
    _ = try? decoder.finish()
}
