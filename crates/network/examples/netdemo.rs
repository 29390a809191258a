//! Manual check: `netdemo up NETNS_PATH PORTSPEC` / `netdemo down`, state under /tmp/netdemo.
use berth_network::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nets = Networks::open("/tmp/netdemo/root".as_ref(), "/tmp/netdemo/run".as_ref())
        .unwrap()
        .with_table("bdemo")
        .with_default_bridge("bdemo0");
    match args[1].as_str() {
        "up" => {
            let mut req = AttachRequest::new("bridge", &args[2], &args[3]);
            if let Some(p) = args.get(4) {
                req.ports = parse_publish(p).unwrap();
            }
            let att = nets.attach(&req).unwrap();
            println!("{}", serde_json::to_string(&att).unwrap());
        }
        "release" => {
            for a in nets.attachments("bridge").unwrap() {
                nets.release(&a).unwrap();
            }
        }
        _ => {
            for a in nets.attachments("bridge").unwrap() {
                nets.detach(&a).unwrap();
            }
            nets.teardown_idle().unwrap();
        }
    }
}
