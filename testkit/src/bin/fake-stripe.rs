//! The fake Stripe as a program, for the browser tests: prints its URL, then serves until
//! killed. `fake-stripe SECRET_KEY WEBHOOK_SECRET WEBHOOK_URL`: it takes API calls with
//! `SECRET_KEY` and sends its events, signed with `WEBHOOK_SECRET`, to `WEBHOOK_URL`.

use gitvista_testkit::stripe::FakeStripe;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, secret, webhook] = args.as_slice() else {
        eprintln!("usage: fake-stripe SECRET_KEY WEBHOOK_SECRET WEBHOOK_URL");
        std::process::exit(2);
    };
    let stripe = FakeStripe::start(key, secret);
    stripe.set_webhook_url(webhook);
    println!("fake Stripe at {}", stripe.url());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
