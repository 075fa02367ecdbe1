/// `PUT /actions`.
public struct InstanceActionInfo: Codable, Sendable, Equatable {
    public enum ActionType: String, WireEnum, Sendable {
        case instanceStart = "InstanceStart"
        case sendCtrlAltDel = "SendCtrlAltDel"
        case flushMetrics = "FlushMetrics"
    }

    public var actionType: ActionType

    enum CodingKeys: String, CodingKey, CaseIterable {
        case actionType = "action_type"
    }

    public init(actionType: ActionType) { self.actionType = actionType }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        actionType = try container.decode(ActionType.self, forKey: .actionType)
    }
}

/// `PATCH /vm`: pause or resume the vCPUs.
public struct VmStateChange: Codable, Sendable, Equatable {
    public enum State: String, WireEnum, Sendable {
        case paused = "Paused"
        case resumed = "Resumed"
    }

    public var state: State

    enum CodingKeys: String, CodingKey, CaseIterable {
        case state
    }

    public init(state: State) { self.state = state }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        state = try container.decode(State.self, forKey: .state)
    }
}
