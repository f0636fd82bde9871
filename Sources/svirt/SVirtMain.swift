import SVirtCommands

@main
struct SVirtMain {
    static func main() {
        SVirtEntry.main()
    }
}
