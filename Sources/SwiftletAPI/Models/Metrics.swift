/// `PUT /metrics` (before boot only): where metrics lines go.
public struct MetricsConfig: Codable, Sendable, Equatable {
    public var metricsPath: String
    /// Newer Firecracker fields (an id and fixed properties in every line); accepted and stored, not written yet.
    public var emitID: Bool?
    public var properties: [String: String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case metricsPath = "metrics_path"
        case emitID = "emit_id"
        case properties
    }

    public init(metricsPath: String, emitID: Bool? = nil, properties: [String: String]? = nil) {
        self.metricsPath = metricsPath
        self.emitID = emitID
        self.properties = properties
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        metricsPath = try container.decode(String.self, forKey: .metricsPath)
        emitID = try container.decodeIfPresent(Bool.self, forKey: .emitID)
        properties = try container.decodeIfPresent([String: String].self, forKey: .properties)
    }
}
