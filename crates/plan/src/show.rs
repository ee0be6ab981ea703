pub fn show() {}
