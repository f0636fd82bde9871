/// An `<input>` device. Only evdev passthrough has a host path.
public struct InputDevice: Sendable, Hashable {
    public var type: String
    /// The host event device, e.g. `/dev/input/event3`.
    public var evdev: String?

    public init(type: String, evdev: String?) {
        self.type = type
        self.evdev = evdev
    }
}
