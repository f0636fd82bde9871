import SVirtCommands

@main
struct SVirtMain {
    static func main() async {
        await SVirtCommand.main()
    }
}
